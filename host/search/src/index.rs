//! One tantivy index: its schema, writes and queries.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value as Json;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{QueryParser, QueryParserError};
use tantivy::query_grammar::{UserInputAst, UserInputBound, UserInputLeaf};
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, NumericOptions, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value as _,
};
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use weir_events::json::FieldsJson;
use weir_events::{Event, Value};

/// The analyser of text fields (see the crate docs).
const ANALYZER: &str = "weir_text";
/// Memory the writer may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 32 << 20;
/// Most hits one query returns.
pub const MAX_LIMIT: usize = 1000;

/// Field names the schema uses itself; configured fields may not take them.
pub const RESERVED_FIELDS: [&str; 5] = ["id", "key", "kind", "time", "text"];
const SOURCE: &str = "_source";

/// Which event fields get a field of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSettings {
    /// Text fields searchable by name (`restaurant_name:müller`). Every other text value
    /// is in the field `text`; a query searches both by default.
    pub text_fields: Vec<String>,
    /// Numeric fields (ints and floats, as f64) filterable by range (`total:>=20`).
    pub numeric_fields: Vec<String>,
}

/// Why an index could not be opened, written or queried.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query string does not parse. Answered 400.
    #[error("invalid query {query:?}: {reason}")]
    Query {
        /// The query.
        query: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The index directory holds an index built with other settings.
    #[error(
        "search index {index} at {path} was built with other fields ({reason}); remove the directory to rebuild it \
         from the stream, or give the sink another index name"
    )]
    SchemaChanged {
        /// The index.
        index: String,
        /// Its directory.
        path: PathBuf,
        /// What tantivy said.
        reason: String,
    },
    /// Tantivy failed (I/O, a damaged index).
    #[error("search index {index} at {path}: {source}")]
    Index {
        /// The index.
        index: String,
        /// Its directory.
        path: PathBuf,
        /// Why.
        source: Box<tantivy::TantivyError>,
    },
}

/// One hit of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The record id.
    pub id: String,
    /// BM25 score (constant for filters).
    pub score: f32,
    /// The stored document: `{"id","kind","key","time","fields","lineage"}`.
    pub document: Json,
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// How many documents match.
    pub total: usize,
    /// The best `limit` of them, best first.
    pub hits: Vec<Hit>,
}

/// A document to index.
#[derive(Debug, Clone)]
pub(crate) struct NewDocument<'a> {
    pub(crate) id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) event: &'a Event,
    pub(crate) lineage: &'a str,
}

/// The document a hit returns, stored with it: written straight from the event (no JSON
/// value built in between), members in this order.
#[derive(serde::Serialize)]
struct StoredSource<'a> {
    id: &'a str,
    kind: &'a str,
    key: Option<&'a str>,
    time: String,
    fields: FieldsJson<'a>,
    lineage: &'a str,
}

struct Fields {
    id: Field,
    key: Field,
    kind: Field,
    time: Field,
    text: Field,
    source: Field,
    text_fields: Vec<(String, Field)>,
    numeric_fields: Vec<(String, Field)>,
}

/// A search index in a directory.
pub struct SearchIndex {
    name: String,
    path: PathBuf,
    index: Index,
    fields: Fields,
    /// The writer; `None` after a write failed, so the next write starts a fresh one (a
    /// writer whose merge or commit failed, say on a full disk, stays broken for good).
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    default_fields: Vec<Field>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("name", &self.name).field("path", &self.path).finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index `name` in `path` (creating both when missing).
    ///
    /// # Errors
    /// [`SearchError::SchemaChanged`] when the directory holds an index with other
    /// settings; [`SearchError::Index`] when it cannot be opened.
    pub fn open(name: &str, path: &Path, settings: &IndexSettings) -> Result<Self, SearchError> {
        let error = |source: tantivy::TantivyError| SearchError::Index {
            index: name.to_owned(),
            path: path.to_owned(),
            source: Box::new(source),
        };
        std::fs::create_dir_all(path).map_err(|e| error(e.into()))?;
        let (schema, fields) = schema(settings, TimeField::FastOnly);
        let directory = MmapDirectory::open(path).map_err(|e| error(e.into()))?;
        let index = if Index::exists(&directory).map_err(|e| error(e.into()))? {
            let index = Index::open(directory).map_err(error)?;
            // An index created before the time field became fast-only keeps its schema:
            // same fields, same order, so `fields` names them in either.
            let on_disk = index.schema();
            if on_disk != schema && on_disk != self::schema(settings, TimeField::IndexedAndFast).0 {
                let reason = "its schema is none this sink's text_fields and numeric_fields make".to_owned();
                return Err(SearchError::SchemaChanged { index: name.to_owned(), path: path.to_owned(), reason });
            }
            index
        } else {
            Index::create(directory, schema, tantivy::IndexSettings::default()).map_err(error)?
        };
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        index.tokenizers().register(ANALYZER, analyzer);
        let writer = index.writer_with_num_threads(1, WRITER_MEMORY).map_err(error)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(error)?;
        let mut default_fields = vec![fields.text];
        default_fields.extend(fields.text_fields.iter().map(|(_, f)| *f));
        Ok(Self {
            name: name.to_owned(),
            path: path.to_owned(),
            index,
            fields,
            writer: Mutex::new(Some(writer)),
            reader,
            default_fields,
        })
    }

    /// The index's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Indexes `documents`, replacing any with the same id, and commits. Blocking.
    ///
    /// Replacing costs a delete per document, which tantivy applies to every segment at
    /// commit (about 5 % of the demo pipeline end to end: BENCHMARKS.md). So the deletes
    /// are made only when the index may hold one of these ids already: when some id lies
    /// between the smallest and the largest of them. A commit's ids share its stream,
    /// shard and range of positions, so that is the case for a replay or a retry of a
    /// commit written before, and seldom otherwise.
    pub(crate) fn write(&self, documents: &[NewDocument<'_>]) -> Result<(), SearchError> {
        let smallest = documents.iter().map(|doc| doc.id).min().unwrap_or_default();
        let largest = documents.iter().map(|doc| doc.id).max().unwrap_or_default();
        self.commit_with(|writer| {
            // Checked under the writer's lock, on a reader reloaded to the last commit,
            // so a write that committed but failed to reload still counts.
            let replaces = self.reader.reload().is_err() || self.holds_an_id_between(smallest, largest);
            documents.iter().try_for_each(|doc| {
                if replaces {
                    writer.delete_term(Term::from_field_text(self.fields.id, doc.id));
                }
                writer.add_document(self.document(doc)).map(drop)
            })
        })
    }

    /// Removes the documents with these ids (those it holds) and commits. Blocking.
    pub(crate) fn remove(&self, ids: &[&str]) -> Result<(), SearchError> {
        self.commit_with(|writer| {
            for id in ids {
                writer.delete_term(Term::from_field_text(self.fields.id, id));
            }
            Ok(())
        })
    }

    /// Runs `change` on the index writer and commits it, then reloads the reader so the
    /// change is searchable when this returns. Blocking.
    fn commit_with(
        &self,
        change: impl FnOnce(&mut IndexWriter) -> Result<(), tantivy::TantivyError>,
    ) -> Result<(), SearchError> {
        let error = |source| self.error(source);
        let mut slot = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let writer = match slot.take() {
            Some(writer) => writer,
            None => {
                tracing::warn!(index = %self.name, "starting a new index writer after a failed write");
                self.index.writer_with_num_threads(1, WRITER_MEMORY).map_err(error)?
            }
        };
        let writer = slot.insert(writer);
        if let Err(e) = change(writer).and_then(|()| writer.commit().map(drop)) {
            // What was buffered goes with the writer: the batch is retried whole, on a
            // fresh writer (dropping this one releases the index's lock).
            *slot = None;
            return Err(error(e));
        }
        drop(slot);
        self.reader.reload().map_err(error)
    }

    /// Whether a document id from `smallest` to `largest` (as bytes, both included) is in
    /// the index's term dictionary, in any segment; true when that cannot be read, so
    /// that the caller replaces rather than risks a double. Ids of deleted documents stay
    /// in the dictionary until their segment is merged: they answer true too.
    fn holds_an_id_between(&self, smallest: &str, largest: &str) -> bool {
        let searcher = self.reader.searcher();
        searcher.segment_readers().iter().any(|segment| {
            let Ok(ids) = segment.inverted_index(self.fields.id) else { return true };
            match ids.terms().range().ge(smallest.as_bytes()).le(largest.as_bytes()).into_stream() {
                Ok(mut terms) => terms.advance(),
                Err(_) => true,
            }
        })
    }

    fn document(&self, new: &NewDocument<'_>) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, new.id);
        doc.add_text(f.kind, new.kind);
        if let Some(key) = &new.event.key {
            doc.add_text(f.key, key);
        }
        doc.add_date(f.time, DateTime::from_timestamp_micros(new.event.time));
        for (name, value) in &new.event.fields {
            // A value is indexed once: in its own field when it has one, else in `text`.
            // Queries search `text` and every field of its own by default, so an
            // unqualified term finds it either way; indexing it twice cost a third of
            // the index's work (BENCHMARKS.md).
            if let Value::Text(text) = value {
                match f.text_fields.iter().find(|(n, _)| n.as_str() == name.as_ref()) {
                    Some((_, field)) => doc.add_text(*field, text),
                    None => doc.add_text(f.text, text),
                }
            }
            let number = match value {
                Value::Int(i) => Some(*i as f64),
                Value::Float(x) if x.is_finite() => Some(*x),
                _ => None,
            };
            if let Some(number) = number
                && let Some((_, field)) = f.numeric_fields.iter().find(|(n, _)| n.as_str() == name.as_ref())
            {
                doc.add_f64(*field, number);
            }
        }
        let source = StoredSource {
            id: new.id,
            kind: new.kind,
            key: new.event.key.as_deref(),
            time: weir_events::time::format_rfc3339(new.event.time),
            fields: FieldsJson(&new.event.fields),
            lineage: new.lineage,
        };
        doc.add_text(f.source, serde_json::to_string(&source).unwrap_or_default());
        doc
    }

    /// Runs `query` (tantivy's query-string syntax, conjunction by default) and returns
    /// the total number of matches and the best `limit` (at most [`MAX_LIMIT`]).
    ///
    /// # Errors
    /// [`SearchError::Query`] when the query does not parse.
    pub fn search(&self, query: &str, limit: usize) -> Result<SearchResults, SearchError> {
        let refused = |reason: String| SearchError::Query { query: shown(query), reason };
        crate::query_bounds::check(query).map_err(refused)?;
        let mut parser = QueryParser::for_index(&self.index, self.default_fields.clone());
        parser.set_conjunction_by_default();
        let parsed = match parser.parse_query(query) {
            Ok(parsed) => parsed,
            // The time is a fast field only (not in the inverted index), so an exact time
            // is asked as the range of that one instant. Only a query that failed so is
            // rewritten: every other query is parsed exactly as tantivy parses it.
            Err(QueryParserError::FieldNotIndexed(field)) if field == TIME => {
                let ast = tantivy::query_grammar::parse_query(query)
                    .map_err(|_| refused(QueryParserError::SyntaxError(query.to_owned()).to_string()))?;
                parser
                    .build_query_from_user_input_ast(exact_times_as_ranges(ast))
                    .map_err(|e| refused(e.to_string()))?
            }
            Err(other) => return Err(refused(other.to_string())),
        };
        let searcher = self.reader.searcher();
        let limit = limit.clamp(1, MAX_LIMIT);
        let (top, total) = searcher
            .search(&parsed, &(TopDocs::with_limit(limit).order_by_score(), Count))
            .map_err(|source| self.error(source))?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(|source| self.error(source))?;
            let source = doc.get_first(self.fields.source).and_then(|v| v.as_str()).unwrap_or("null");
            let document: Json = serde_json::from_str(source).unwrap_or(Json::Null);
            let id = document["id"].as_str().unwrap_or_default().to_owned();
            hits.push(Hit { id, score, document });
        }
        Ok(SearchResults { total, hits })
    }

    /// How many documents the index holds (as of the last commit).
    pub fn count(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn error(&self, source: tantivy::TantivyError) -> SearchError {
        SearchError::Index { index: self.name.clone(), path: self.path.clone(), source: Box::new(source) }
    }
}

/// The query as error messages show it: its first 100 characters.
fn shown(query: &str) -> String {
    match query.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &query[..end]),
        None => query.to_owned(),
    }
}

/// How the schema has the event time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeField {
    /// A fast (columnar) field only, what indexes get since 2026-12-05: range queries
    /// (`time:[… TO …]`) read it, and no term per document goes into the inverted index,
    /// where nearly every microsecond time was a term of its own (BENCHMARKS.md).
    FastOnly,
    /// Indexed as well: indexes created before, which keep opening as they are.
    IndexedAndFast,
}

/// The event time's field.
const TIME: &str = "time";

/// `ast` with each exact `time:` term (`time:"2026-11-26T10:15:00Z"`, quoted as the grammar
/// reads a time) as the inclusive range of that instant, which the time's fast field
/// answers. The recursion follows the query's nesting, which `query_bounds` limits before
/// the parser runs.
fn exact_times_as_ranges(ast: UserInputAst) -> UserInputAst {
    match ast {
        UserInputAst::Clause(clauses) => UserInputAst::Clause(
            clauses.into_iter().map(|(occur, clause)| (occur, exact_times_as_ranges(clause))).collect(),
        ),
        UserInputAst::Boost(inner, boost) => UserInputAst::Boost(Box::new(exact_times_as_ranges(*inner)), boost),
        UserInputAst::Leaf(leaf) => match *leaf {
            UserInputLeaf::Literal(literal)
                if literal.field_name.as_deref() == Some(TIME) && !literal.prefix && literal.slop == 0 =>
            {
                UserInputAst::Leaf(Box::new(UserInputLeaf::Range {
                    field: literal.field_name,
                    lower: UserInputBound::Inclusive(literal.phrase.clone()),
                    upper: UserInputBound::Inclusive(literal.phrase),
                }))
            }
            other => UserInputAst::Leaf(Box::new(other)),
        },
    }
}

fn schema(settings: &IndexSettings, time_field: TimeField) -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let analysed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let id = builder.add_text_field("id", STRING | STORED);
    let key = builder.add_text_field("key", STRING);
    let kind = builder.add_text_field("kind", STRING);
    let time = builder.add_date_field(
        TIME,
        match time_field {
            TimeField::FastOnly => DateOptions::default(),
            TimeField::IndexedAndFast => DateOptions::default().set_indexed(),
        }
        .set_fast()
        .set_precision(DateTimePrecision::Microseconds),
    );
    let text = builder.add_text_field("text", analysed.clone());
    let source = builder.add_text_field(SOURCE, STORED);
    let text_fields = settings
        .text_fields
        .iter()
        .map(|name| (name.clone(), builder.add_text_field(name, analysed.clone())))
        .collect();
    let numeric = NumericOptions::default().set_indexed().set_fast();
    let numeric_fields = settings
        .numeric_fields
        .iter()
        .map(|name| (name.clone(), builder.add_f64_field(name, numeric.clone())))
        .collect();
    let fields = Fields { id, key, kind, time, text, source, text_fields, numeric_fields };
    (builder.build(), fields)
}

#[cfg(test)]
mod tests {
    use weir_events::Name;

    use super::*;
    use crate::query_bounds::{MAX_QUERY_CLAUSES, MAX_QUERY_DEPTH};

    fn restaurant(id: &str, name: &str, total: f64) -> Event {
        let fields = vec![
            (Name::from("restaurant_name"), Value::from(name)),
            (Name::from("total"), Value::Float(total)),
            (Name::from("zone"), Value::from("north")),
        ];
        Event { key: Some(id.to_owned()), time: 1_764_151_200_000_000, fields }
    }

    fn settings() -> IndexSettings {
        IndexSettings { text_fields: vec!["restaurant_name".into()], numeric_fields: vec!["total".into()] }
    }

    fn write(index: &SearchIndex, docs: &[(&str, Event)]) {
        let docs: Vec<NewDocument<'_>> =
            docs.iter().map(|(id, event)| NewDocument { id, kind: "event", event, lineage: "p@1" }).collect();
        index.write(&docs).unwrap();
    }

    fn ids(index: &SearchIndex, query: &str) -> Vec<String> {
        let mut ids: Vec<String> = index.search(query, 100).unwrap().hits.into_iter().map(|h| h.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn non_ascii_text_is_found_with_and_without_accents() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0)), ("b", restaurant("r-2", "Smokehouse", 9.5))]);
        for query in ["müller", "Muller", "MÜLLER", "cafe", "restaurant_name:café"] {
            assert_eq!(ids(&index, query), ["a"], "query {query}");
        }
        assert_eq!(ids(&index, "north"), ["a", "b"]);
        assert_eq!(ids(&index, "total:>=10"), ["a"]);
        assert_eq!(ids(&index, "total:[1 TO 10]"), ["b"]);
        assert_eq!(ids(&index, "key:r-2"), ["b"]);
        assert_eq!(ids(&index, "time:[2025-11-26T00:00:00Z TO 2025-11-27T00:00:00Z]"), ["a", "b"]);
        let hit = &index.search("smokehouse", 1).unwrap().hits[0];
        assert_eq!(hit.document["fields"]["restaurant_name"], "Smokehouse");
        assert_eq!(hit.document["key"], "r-2");
    }

    #[test]
    fn each_text_value_is_indexed_once_and_an_unqualified_term_finds_it_either_way() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0))]);
        // restaurant_name has a field of its own; zone does not.
        assert_eq!(ids(&index, "müller"), ["a"]);
        assert_eq!(ids(&index, "restaurant_name:müller"), ["a"]);
        assert_eq!(ids(&index, "text:müller"), Vec::<String>::new(), "not indexed in text again");
        assert_eq!(ids(&index, "north"), ["a"]);
        assert_eq!(ids(&index, "text:north"), ["a"]);
        assert_eq!(ids(&index, "müller north"), ["a"], "terms in different fields, joined by AND");
        assert_eq!(ids(&index, "müller south"), Vec::<String>::new());
    }

    #[test]
    fn a_hit_returns_the_stored_document_with_its_members_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        let mut keyless = restaurant("r-1", "Smokehouse", 9.5);
        keyless.key = None;
        write(&index, &[("a", keyless)]);
        let hit = &index.search("smokehouse", 1).unwrap().hits[0];
        assert_eq!(
            hit.document.to_string(),
            concat!(
                r#"{"id":"a","kind":"event","key":null,"time":"2025-11-26T10:00:00Z","#,
                r#""fields":{"restaurant_name":"Smokehouse","total":9.5,"zone":"north"},"lineage":"p@1"}"#
            )
        );
    }

    #[test]
    fn a_replayed_commit_replaces_its_documents_and_a_new_one_is_only_added() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        let id = |seq: u64| format!("orders-0000-{seq:020}-0");
        let commit = |seqs: std::ops::Range<u64>, name: &str| -> Vec<(String, Event)> {
            seqs.map(|seq| (id(seq), restaurant(&format!("r-{seq}"), name, 1.0))).collect()
        };
        let write_owned = |docs: &[(String, Event)]| {
            let docs: Vec<(&str, Event)> = docs.iter().map(|(id, event)| (id.as_str(), event.clone())).collect();
            write(&index, &docs);
        };

        write_owned(&commit(10..20, "Smokehouse"));
        assert!(index.holds_an_id_between(&id(15), &id(30)), "ids of the written commit are found");
        assert!(!index.holds_an_id_between(&id(20), &id(29)), "the next range holds none");
        write_owned(&commit(20..30, "Smokehouse"));
        assert_eq!(index.count(), 20);

        // A replay of the first commit, whose enricher now names the restaurant otherwise.
        write_owned(&commit(10..20, "Dim Sum"));
        assert_eq!(index.count(), 20, "replaced, not doubled");
        assert_eq!(ids(&index, "smokehouse").len(), 10);
        assert_eq!(ids(&index, "dim").len(), 10);
        // A write whose ids straddle written ones replaces them too.
        write_owned(&commit(25..35, "Café Müller"));
        assert_eq!(index.count(), 25);
        assert_eq!(ids(&index, "muller").len(), 10);
    }

    #[test]
    fn rewriting_an_id_replaces_the_document_also_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
            write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0))]);
            write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0))]);
            assert_eq!(index.count(), 1);
        }
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 21.0)), ("c", restaurant("r-3", "Dim Sum", 1.0))]);
        assert_eq!(index.count(), 2);
        assert_eq!(ids(&index, "müller"), ["a"]);
        assert_eq!(index.search("müller", 5).unwrap().hits[0].document["fields"]["total"], 21.0);
    }

    #[test]
    fn removed_ids_are_no_longer_found_and_unknown_ids_are_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0)), ("b", restaurant("r-2", "Smokehouse", 9.5))]);
        index.remove(&["a", "never-written"]).unwrap();
        assert_eq!(index.count(), 1);
        assert_eq!(ids(&index, "north"), ["b"]);
        assert!(ids(&index, "müller").is_empty());
    }

    #[test]
    fn a_query_syntax_error_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        for query in ["nosuchfield:x", "total:abc", "time:[yesterday TO now]"] {
            let error = index.search(query, 10).unwrap_err();
            assert!(matches!(error, SearchError::Query { .. }), "{query}: {error}");
            assert!(error.to_string().contains(query), "{error}");
        }
    }

    #[test]
    fn other_settings_on_an_existing_index_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        drop(SearchIndex::open("orders", dir.path(), &settings()).unwrap());
        let other = IndexSettings { text_fields: vec![], numeric_fields: vec!["total".into(), "tip".into()] };
        let error = SearchIndex::open("orders", dir.path(), &other).unwrap_err();
        assert!(matches!(error, SearchError::SchemaChanged { .. }), "{error}");
        assert!(error.to_string().contains("remove the directory"), "{error}");
    }

    #[test]
    fn the_event_time_filters_by_range_and_an_exact_time_by_the_range_of_that_instant() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0))]);
        assert_eq!(ids(&index, "time:[2025-11-26T10:00:00Z TO 2025-11-26T10:00:00.000001Z]"), ["a"]);
        assert!(ids(&index, "time:[2025-11-26T10:00:00.000001Z TO 2025-11-27T00:00:00Z]").is_empty());
        assert_eq!(ids(&index, "time:>=2025-11-26T10:00:00Z"), ["a"]);
        assert!(ids(&index, "time:>2025-11-26T10:00:00Z").is_empty());
        write(&index, &[("b", restaurant("r-2", "Smokehouse", 9.5))]);
        assert_eq!(ids(&index, r#"time:"2025-11-26T10:00:00Z""#), ["a", "b"]);
        assert!(ids(&index, r#"time:"2025-11-26T10:00:00.000001Z""#).is_empty());
        assert_eq!(ids(&index, r#"müller AND time:"2025-11-26T10:00:00Z""#), ["a"]);
        assert_eq!(ids(&index, r#"(smokehouse OR müller) AND -time:"2025-11-26T10:00:01Z""#), ["a", "b"]);
        assert_eq!(ids(&index, r#"(total:>=10 AND time:"2025-11-26T10:00:00Z")^2"#), ["a"]);
        let error = index.search(r#"time:"not a time""#, 10).unwrap_err();
        assert!(matches!(error, SearchError::Query { .. }), "{error}");
    }

    #[test]
    fn an_index_created_with_the_time_indexed_keeps_opening_and_answering() {
        let dir = tempfile::tempdir().unwrap();
        let (indexed_time, _) = schema(&settings(), TimeField::IndexedAndFast);
        let directory = MmapDirectory::open(dir.path()).unwrap();
        let created = Index::create(directory, indexed_time.clone(), tantivy::IndexSettings::default()).unwrap();
        drop(created);
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0)), ("b", restaurant("r-2", "Smokehouse", 9.5))]);
        drop(index);
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        assert_eq!(index.index.schema(), indexed_time);
        assert_eq!(ids(&index, "time:[2025-11-26T00:00:00Z TO 2025-11-27T00:00:00Z]"), ["a", "b"]);
        assert_eq!(ids(&index, r#"time:"2025-11-26T10:00:00Z""#), ["a", "b"]);
        assert_eq!(ids(&index, "müller AND total:>=10"), ["a"]);
    }

    #[test]
    fn hostile_queries_are_refused_or_answered_on_a_small_stack_never_overflowing_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = std::sync::Arc::new(SearchIndex::open("orders", dir.path(), &settings()).unwrap());
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0))]);
        let deepest_allowed = format!("{}müller{}", "(".repeat(MAX_QUERY_DEPTH), ")".repeat(MAX_QUERY_DEPTH));
        let most_operators_allowed = format!("müller{}", " OR müller".repeat((MAX_QUERY_CLAUSES - 1) / 2));
        let queries = [
            deepest_allowed,
            most_operators_allowed,
            format!("{}a{}", "(".repeat(5000), ")".repeat(5000)),
            format!("{}a", "NOT ".repeat(5000)),
            format!("{}müller", "NOT ".repeat(MAX_QUERY_CLAUSES - 1)),
            format!("{}a", "-".repeat(5000)),
            "*".to_owned(),
            "restaurant_name:mü*".to_owned(),
            "mü*".to_owned(),
        ];
        // A quarter of the stack the blocking pool's threads get: what parses here
        // parses there with room to spare.
        let small_stack = std::thread::Builder::new().stack_size(512 << 10);
        let answers = small_stack
            .spawn(move || queries.iter().map(|query| (query.len(), index.search(query, 10))).collect::<Vec<_>>())
            .unwrap()
            .join()
            .expect("no query overflows the stack");
        for (_, answer) in &answers[..2] {
            assert!(
                answer.as_ref().is_ok_and(|found| found.total == 1),
                "the bounds themselves are searchable: {answer:?}"
            );
        }
        for (length, answer) in &answers[2..] {
            if let Err(error) = answer {
                assert!(matches!(error, SearchError::Query { .. }), "a query of {length} bytes: {error}");
                assert!(!error.to_string().contains(&dir.path().display().to_string()), "no path: {error}");
            }
        }
    }

    #[test]
    fn after_a_failed_write_the_next_write_starts_a_fresh_writer() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open("orders", dir.path(), &settings()).unwrap();
        write(&index, &[("a", restaurant("r-1", "Café Müller", 20.0))]);
        // What a failed add or commit leaves: no writer (the broken one dropped).
        *index.writer.lock().unwrap() = None;
        write(&index, &[("b", restaurant("r-2", "Smokehouse", 9.5))]);
        assert_eq!(ids(&index, "north"), ["a", "b"]);
    }
}
