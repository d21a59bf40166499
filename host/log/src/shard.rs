//! Which shard a record lands on: a hash that never changes across processes, platforms or
//! versions, since the shard of a key must stay the one it had when the log was written.

/// FNV-1a, 64 bits, of `bytes`.
///
/// Written out here rather than taken from `std` (whose hashers are randomised per process
/// or may change between Rust versions): a key's shard must be the same in every process
/// that ever opens the log.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME))
}

/// The shard, in `0..shards`, of a record: FNV-1a 64 of its partition key modulo `shards`, or,
/// for a record without a key, of its data (so a producer that retries a request sends each
/// record to the shard it went to the first time).
///
/// # Panics
///
/// If `shards` is 0.
pub fn shard_for(partition_key: Option<&str>, data: &[u8], shards: u32) -> u32 {
    assert!(shards > 0, "a stream has at least one shard");
    let hash = fnv1a_64(partition_key.map_or(data, str::as_bytes));
    // The remainder is below `shards`, a u32, so the conversion never fails.
    u32::try_from(hash % u64::from(shards)).unwrap_or(0)
}

/// The canary bucket of a partition key, 0 to 99: FNV-1a 64 of its bytes (of nothing for
/// a record without a key) modulo 100 — the stable hash the log shards by — so a key
/// always lands in the same bucket, in every process. A canary at `p` percent takes the
/// keys of buckets below `p`.
pub fn canary_bucket(key: Option<&str>) -> u8 {
    // The remainder is below 100, so the conversion never fails.
    u8::try_from(fnv1a_64(key.unwrap_or("").as_bytes()) % 100).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_buckets_are_stable_and_spread_evenly() {
        assert_eq!(canary_bucket(Some("r-1")), canary_bucket(Some("r-1")));
        let in_ten_percent = (0..10_000).filter(|i| canary_bucket(Some(&format!("customer-{i}"))) < 10).count();
        assert!((900..1100).contains(&in_ten_percent), "{in_ten_percent} of 10000 keys in the first 10 buckets");
    }
}
