//! The tantivy index: its schema, staging entries, atomic commits that carry the checkpoint
//! (the last global position the index reflects) as the commit payload, and search.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED,
    STRING,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::entry::{AccountEntry, Entry, Kind};

/// Most results one search returns.
pub const MAX_LIMIT: usize = 100;
/// Longest accepted query, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// Memory for the index writer's buffers.
const WRITER_MEMORY: usize = 50_000_000;

/// The searchable side of the index; cheap to clone, safe to share with HTTP handlers.
#[derive(Clone)]
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

/// The writing side: stages entries and commits them with a checkpoint. One per index.
pub struct IndexFeeder {
    search: SearchIndex,
    writer: Arc<Mutex<IndexWriter>>,
    /// Entries staged since the last commit, by key (the searcher does not see them yet).
    pending: HashMap<String, Entry>,
}

/// What the index could not do.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("could not open the index in {path}: {source}; check DATA_DIR and its permissions (another indexer may hold the index lock)")]
    Open {
        path: String,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error("the index failed while {action}: {source}")]
    Tantivy {
        action: &'static str,
        #[source]
        source: tantivy::TantivyError,
    },
    #[error(
        "the index checkpoint {payload:?} is unreadable; rebuild the index with `indexer rebuild`"
    )]
    BadCheckpoint { payload: String },
    #[error("the index writer is unusable after a panic; restart the indexer")]
    Poisoned,
}

/// A search request that cannot be answered as asked (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is empty; give q=<words>, e.g. q=holiday")]
    Empty,
    #[error("the query is {chars} characters long; the limit is {MAX_QUERY_CHARS}")]
    TooLong { chars: usize },
    #[error("limit must be between 1 and {MAX_LIMIT}, got {limit}")]
    Limit { limit: usize },
    #[error("the query could not be parsed: {reason}; use words, \"phrases\", field:word (fields: title, description, customer, parties, state, amount), AND/OR/NOT, or quote special characters")]
    Syntax { reason: String },
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub score: f32,
    #[serde(flatten)]
    pub entry: Entry,
}

/// The results of one search, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// How many entries match in all.
    pub total: usize,
    pub results: Vec<Hit>,
}

#[derive(Clone, Copy)]
struct Fields {
    key: Field,
    kind: Field,
    entry: Field,
    title: Field,
    description: Field,
    customer: Field,
    parties: Field,
    state: Field,
    amount: Field,
    amount_text: Field,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    position: u64,
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (and the directory) if needed, with a writer.
    pub fn open(dir: &Path) -> Result<IndexFeeder, IndexError> {
        let open_error = |source| IndexError::Open {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_error(e.into()))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| open_error(e.into()))?;
        let index = Index::open_or_create(directory, schema).map_err(open_error)?;
        let writer: IndexWriter = index.writer(WRITER_MEMORY).map_err(open_error)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(open_error)?;
        Ok(IndexFeeder {
            search: SearchIndex {
                index,
                reader,
                fields,
            },
            writer: Arc::new(Mutex::new(writer)),
            pending: HashMap::new(),
        })
    }

    /// The last global position the committed index reflects (0 for a new index).
    pub fn checkpoint(&self) -> Result<u64, IndexError> {
        let metas = self
            .index
            .load_metas()
            .map_err(|source| IndexError::Tantivy {
                action: "reading the commit metadata",
                source,
            })?;
        match metas.payload {
            None => Ok(0),
            Some(payload) => serde_json::from_str::<Checkpoint>(&payload)
                .map(|c| c.position)
                .map_err(|_| IndexError::BadCheckpoint { payload }),
        }
    }

    /// Committed entries in the index.
    pub fn documents(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The committed entry with this key.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, IndexError> {
        let searcher = self.reader.searcher();
        let query = TermQuery::new(
            Term::from_field_text(self.fields.key, key),
            IndexRecordOption::Basic,
        );
        let found = searcher
            .search(&query, &TopDocs::with_limit(1))
            .map_err(|source| IndexError::Tantivy {
                action: "looking up an entry",
                source,
            })?;
        let Some((_, address)) = found.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument =
            searcher
                .doc(*address)
                .map_err(|source| IndexError::Tantivy {
                    action: "reading an entry",
                    source,
                })?;
        Ok(self.entry_of(&doc))
    }

    /// Checks a request, then searches. `kind` narrows to accounts or transfers.
    pub fn search(
        &self,
        query: &str,
        kind: Option<Kind>,
        limit: usize,
    ) -> Result<Result<SearchResults, QueryError>, IndexError> {
        let parsed = match self.parse(query, kind, limit) {
            Ok(parsed) => parsed,
            Err(error) => return Ok(Err(error)),
        };
        let searcher = self.reader.searcher();
        let (top, total) = searcher
            .search(&parsed, &(TopDocs::with_limit(limit), Count))
            .map_err(|source| IndexError::Tantivy {
                action: "searching",
                source,
            })?;
        let mut results = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument =
                searcher
                    .doc(address)
                    .map_err(|source| IndexError::Tantivy {
                        action: "reading a result",
                        source,
                    })?;
            if let Some(entry) = self.entry_of(&doc) {
                results.push(Hit { score, entry });
            }
        }
        // Equal scores are ordered by key, so the same index always answers in the same order.
        results.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.entry.key().cmp(&b.entry.key()))
        });
        Ok(Ok(SearchResults { total, results }))
    }

    /// Checks and parses a request into a tantivy query.
    pub fn parse(
        &self,
        query: &str,
        kind: Option<Kind>,
        limit: usize,
    ) -> Result<Box<dyn Query>, QueryError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(QueryError::Empty);
        }
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong { chars });
        }
        if limit == 0 || limit > MAX_LIMIT {
            return Err(QueryError::Limit { limit });
        }
        let f = self.fields;
        let mut parser = QueryParser::for_index(
            &self.index,
            vec![
                f.title,
                f.description,
                f.customer,
                f.parties,
                f.state,
                f.amount_text,
            ],
        );
        parser.set_field_boost(f.title, 3.0);
        parser.set_field_boost(f.parties, 1.5);
        let parsed = parser.parse_query(query).map_err(|e| QueryError::Syntax {
            reason: e.to_string(),
        })?;
        Ok(match kind {
            None => parsed,
            Some(kind) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, parsed),
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.kind, kind.as_str()),
                        IndexRecordOption::Basic,
                    )),
                ),
            ])),
        })
    }

    fn entry_of(&self, doc: &TantivyDocument) -> Option<Entry> {
        let json = doc.get_first(self.fields.entry)?.as_str()?;
        serde_json::from_str(json).ok()
    }

    fn document(&self, entry: &Entry) -> TantivyDocument {
        let f = self.fields;
        let json = serde_json::to_string(entry).unwrap_or_default();
        match entry {
            Entry::Account(a) => doc!(
                f.key => entry.key(),
                f.kind => "account",
                f.entry => json,
                f.title => a.title.clone(),
                f.description => a.description.clone(),
                f.customer => a.customer_id.clone().unwrap_or_default(),
                f.state => a.status.clone(),
            ),
            Entry::Transfer(t) => doc!(
                f.key => entry.key(),
                f.kind => "transfer",
                f.entry => json,
                f.description => t.description.clone(),
                f.parties => format!("{} {} {} {}", t.from_title, t.to_title, t.from_account_id, t.to_account_id),
                f.state => t.state.clone(),
                f.amount => t.amount,
                f.amount_text => t.amount.to_string(),
            ),
        }
    }
}

impl IndexFeeder {
    /// The searchable side, for HTTP handlers.
    pub fn search_index(&self) -> &SearchIndex {
        &self.search
    }

    /// The entry with this key, staged or committed.
    pub fn current(&self, key: &str) -> Result<Option<Entry>, IndexError> {
        match self.pending.get(key) {
            Some(entry) => Ok(Some(entry.clone())),
            None => self.search.get(key),
        }
    }

    /// The account with this id, staged or committed.
    pub fn account(&self, id: &str) -> Option<AccountEntry> {
        match self.current(&Entry::key_for(Kind::Account, id)) {
            Ok(Some(Entry::Account(account))) => Some(account),
            _ => None,
        }
    }

    /// Replaces the entry with its key (visible after the next commit).
    pub fn stage(&mut self, entry: Entry) -> Result<(), IndexError> {
        let key = entry.key();
        let doc = self.search.document(&entry);
        {
            let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
            writer.delete_term(Term::from_field_text(self.search.fields.key, &key));
            writer
                .add_document(doc)
                .map_err(|source| IndexError::Tantivy {
                    action: "adding an entry",
                    source,
                })?;
        }
        self.pending.insert(key, entry);
        Ok(())
    }

    /// Entries staged since the last commit.
    pub fn staged(&self) -> usize {
        self.pending.len()
    }

    /// Commits staged entries and the checkpoint `position` in one atomic commit, then makes
    /// them searchable. Blocking (it fsyncs): call from a blocking context.
    pub fn commit(&mut self, position: u64) -> Result<(), IndexError> {
        let payload = serde_json::to_string(&Checkpoint { position }).unwrap_or_default();
        {
            let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
            let mut prepared = writer
                .prepare_commit()
                .map_err(|source| IndexError::Tantivy {
                    action: "preparing a commit",
                    source,
                })?;
            prepared.set_payload(&payload);
            prepared.commit().map_err(|source| IndexError::Tantivy {
                action: "committing",
                source,
            })?;
        }
        self.search
            .reader
            .reload()
            .map_err(|source| IndexError::Tantivy {
                action: "reloading the searcher",
                source,
            })?;
        self.pending.clear();
        Ok(())
    }

    /// Drops staged entries (after a failed commit, before reading events again).
    pub fn discard(&mut self) -> Result<(), IndexError> {
        self.pending.clear();
        let mut writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
        writer.rollback().map_err(|source| IndexError::Tantivy {
            action: "rolling back",
            source,
        })?;
        Ok(())
    }

    /// Empties the index and sets its checkpoint to 0, so it is rebuilt from the start of the
    /// log.
    pub fn clear(&mut self) -> Result<(), IndexError> {
        {
            let writer = self.writer.lock().map_err(|_| IndexError::Poisoned)?;
            writer
                .delete_all_documents()
                .map_err(|source| IndexError::Tantivy {
                    action: "deleting every entry",
                    source,
                })?;
        }
        self.pending.clear();
        self.commit(0)
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let stemmed = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let plain = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        kind: builder.add_text_field("kind", STRING),
        entry: builder.add_text_field("entry", STORED),
        title: builder.add_text_field("title", stemmed.clone()),
        description: builder.add_text_field("description", stemmed.clone()),
        customer: builder.add_text_field("customer", plain.clone()),
        parties: builder.add_text_field("parties", stemmed),
        state: builder.add_text_field("state", plain.clone()),
        amount: builder.add_u64_field("amount_value", INDEXED | FAST),
        amount_text: builder.add_text_field("amount", plain),
    };
    (builder.build(), fields)
}
