//! A stream's shards and how they change: a shard can end (Kinesis splits one into two
//! children, or merges two into one) and its children are read only after every parent
//! was read to its end, so that the records of one partition key stay in order.

use std::collections::BTreeSet;

use crate::ShardId;

/// One shard of a stream, as the log lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard.
    pub id: ShardId,
    /// The shards it came from: none for a shard the stream was created with, one after
    /// a split, two after a merge. A parent may no longer be listed once retention removed
    /// all its records.
    pub parents: Vec<ShardId>,
    /// Whether the shard has ended: it takes no new records, and a consumer that read it
    /// to its end moves on to its children.
    pub ended: bool,
}

/// The shards of `shards` a consumer may read now: those not in `finished` (read to
/// their end and committed) whose every parent is either finished or no longer listed.
/// In the order listed.
pub fn readable_shards<'a>(shards: &'a [ShardInfo], finished: &BTreeSet<ShardId>) -> Vec<&'a ShardId> {
    let listed: BTreeSet<&ShardId> = shards.iter().map(|shard| &shard.id).collect();
    shards
        .iter()
        .filter(|shard| !finished.contains(&shard.id))
        .filter(|shard| shard.parents.iter().all(|parent| finished.contains(parent) || !listed.contains(parent)))
        .map(|shard| &shard.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str], ended: bool) -> ShardInfo {
        let id = ShardId::parse(id).unwrap();
        let parents = parents.iter().map(|p| ShardId::parse(p).unwrap()).collect();
        ShardInfo { id, parents, ended }
    }

    fn readable(shards: &[ShardInfo], finished: &[&str]) -> Vec<String> {
        let finished = finished.iter().map(|f| ShardId::parse(f).unwrap()).collect();
        readable_shards(shards, &finished).into_iter().map(ToString::to_string).collect()
    }

    #[test]
    fn shards_without_parents_are_all_readable() {
        let shards = [shard("0", &[], false), shard("1", &[], false)];
        assert_eq!(readable(&shards, &[]), ["0", "1"]);
    }

    #[test]
    fn the_children_of_a_split_wait_until_the_parent_is_finished() {
        let shards = [shard("a", &[], true), shard("b", &["a"], false), shard("c", &["a"], false)];
        assert_eq!(readable(&shards, &[]), ["a"]);
        assert_eq!(readable(&shards, &["a"]), ["b", "c"]);
    }

    #[test]
    fn the_child_of_a_merge_waits_for_both_parents() {
        let shards = [shard("a", &[], true), shard("b", &[], true), shard("m", &["a", "b"], false)];
        assert_eq!(readable(&shards, &["a"]), ["b"]);
        assert_eq!(readable(&shards, &["a", "b"]), ["m"]);
    }

    #[test]
    fn a_parent_no_longer_listed_does_not_hold_its_children_back() {
        let shards = [shard("b", &["a"], false)];
        assert_eq!(readable(&shards, &[]), ["b"]);
    }
}
