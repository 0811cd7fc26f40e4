//! The `Store` trait: everything frontdesk persists, behind one interface that SQLite and
//! PostgreSQL both implement and one test suite checks.
//!
//! Every method that reads or writes a tenant's data takes that tenant's `TenantId`, and
//! implementations put it in every query's `WHERE`, so another tenant's object is simply not
//! found. The store stores what it is given: ids and timestamps are minted by the domain.

use async_trait::async_trait;

use crate::agent::{Agent, AgentRef, AgentVersion};
use crate::conversation::{
    Conversation, ConversationPatch, ConversationQuery, Message, MessageQuery, NewMessage, Page,
};
use crate::error::StoreError;
use crate::id::{
    AgentId, ConversationId, DocumentId, KeyId, KnowledgeBaseId, MessageId, RunId, TenantId, UserId,
};
use crate::key::ApiKey;
use crate::knowledge::{Document, IndexedDocument, KnowledgeHit, NewPassage, Passage};
use crate::session::{Session, SignInLink};
use crate::tenant::{Membership, Tenant, User};
use crate::time::Timestamp;

/// Results of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence for all of frontdesk: one trait per area, implemented by each backend.
pub trait Store:
    BaseStore
    + TenantStore
    + KeyStore
    + AgentStore
    + ConversationStore
    + BranchStore
    + RunStore
    + CredentialStore
    + TurnStore
    + SessionStore
    + KnowledgeStore
    + PassageStore
    + HandoffStore
    + CallStore
{
}

impl<T> Store for T where
    T: BaseStore
        + TenantStore
        + KeyStore
        + AgentStore
        + ConversationStore
        + BranchStore
        + RunStore
        + CredentialStore
        + TurnStore
        + SessionStore
        + KnowledgeStore
        + PassageStore
        + HandoffStore
        + CallStore
{
}

/// Lifecycle and operator settings.
#[async_trait]
pub trait BaseStore: Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for logs and `config show`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations. Safe to run at every start and from several processes.
    async fn migrate(&self) -> StoreResult<()>;

    /// Checks that the database answers (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Operator-level settings (bootstrap markers and the like).
    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>>;
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;
    /// Compare-and-set: writes `value` only if the setting is absent (`expected: None`) or
    /// holds `expected`. Returns whether it wrote, so one process of many wins.
    async fn swap_setting(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool>;
}

/// A user joining a tenant: the user row when the user is new, and the membership.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub new_user: Option<User>,
    pub membership: Membership,
}

/// A new tenant with what it starts with, written all at once or not at all.
#[derive(Debug, Clone)]
pub struct TenantSetup {
    pub tenant: Tenant,
    pub owner: Option<NewMember>,
    pub key: ApiKey,
    pub key_hash: String,
}

/// Tenants, users and memberships.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Inserts the tenant, its owner (and the owner's user when new) and its first key in one
    /// transaction. An email taken meanwhile is `Conflict("email")` and writes nothing.
    async fn create_tenant(&self, setup: &TenantSetup) -> StoreResult<()>;
    async fn get_tenant(&self, tenant: &TenantId) -> StoreResult<Tenant>;
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn set_user_password(&self, user: &UserId, password_hash: &str) -> StoreResult<()>;
    /// Inserts the user (when new) and upserts the membership in one transaction.
    async fn add_member(&self, member: &NewMember) -> StoreResult<()>;
    async fn list_memberships(&self, tenant: &TenantId) -> StoreResult<Vec<(Membership, User)>>;
    async fn get_user(&self, user: &UserId) -> StoreResult<User>;
    /// The tenants a user belongs to, with the role in each, by tenant name.
    async fn user_memberships(&self, user: &UserId) -> StoreResult<Vec<(Membership, Tenant)>>;
    /// Removes a membership (a session showing that tenant moves on at its next request).
    async fn remove_member(&self, tenant: &TenantId, user: &UserId) -> StoreResult<()>;
}

/// Dashboard sessions and one-time links, each found by the SHA-256 of its secret.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    async fn get_session(&self, token_hash: &str) -> StoreResult<Option<Session>>;
    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> StoreResult<()>;
    async fn set_session_tenant(&self, token_hash: &str, tenant: &TenantId) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn insert_link(&self, link: &SignInLink) -> StoreResult<()>;
    async fn get_link(&self, token_hash: &str) -> StoreResult<Option<SignInLink>>;
    /// A tenant's invites not used yet (expired ones included), newest first.
    async fn pending_invites(&self, tenant: &TenantId) -> StoreResult<Vec<SignInLink>>;
    /// Deletes an unused invite of the tenant.
    async fn delete_invite(&self, tenant: &TenantId, token_hash: &str) -> StoreResult<()>;
    /// Marks the invite used and adds the member, in one transaction; an invite used or
    /// expired meanwhile is `NotFound` and writes nothing.
    async fn accept_invite(
        &self,
        token_hash: &str,
        at: Timestamp,
        member: &NewMember,
    ) -> StoreResult<()>;
    /// Marks the reset link used, sets the password and ends every session of the user, in
    /// one transaction; a link used or expired meanwhile is `NotFound` and writes nothing.
    async fn reset_password(
        &self,
        token_hash: &str,
        at: Timestamp,
        user: &UserId,
        password_hash: &str,
    ) -> StoreResult<()>;
}

/// Knowledge bases.
#[async_trait]
pub trait KnowledgeStore: Send + Sync {
    /// A name taken in the tenant is `Conflict("name")`.
    async fn insert_knowledge_base(&self, kb: &crate::knowledge::KnowledgeBase) -> StoreResult<()>;
    /// The tenant's knowledge bases, by name.
    async fn list_knowledge_bases(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Vec<crate::knowledge::KnowledgeBase>>;
    async fn get_knowledge_base(
        &self,
        tenant: &TenantId,
        id: &crate::id::KnowledgeBaseId,
    ) -> StoreResult<crate::knowledge::KnowledgeBase>;
    /// Deletes it with its documents, passages and vectors.
    async fn delete_knowledge_base(
        &self,
        tenant: &TenantId,
        id: &crate::id::KnowledgeBaseId,
    ) -> StoreResult<()>;
    /// Inserts a document (queued) with its content, if it has any yet (a URL's comes later).
    async fn insert_document(&self, document: &Document, content: Option<&[u8]>)
        -> StoreResult<()>;
    /// A knowledge base's documents, newest first.
    async fn list_documents(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
    ) -> StoreResult<Vec<Document>>;
    async fn get_document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
    ) -> StoreResult<Document>;
    /// The document of the knowledge base with this content hash or this URL, if any.
    async fn find_document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        content_hash: Option<&str>,
        url: Option<&str>,
    ) -> StoreResult<Option<Document>>;
    /// Deletes a document with its passages and vectors.
    async fn delete_document(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
    ) -> StoreResult<()>;
    /// A document's stored content.
    async fn document_content(&self, tenant: &TenantId, id: &DocumentId) -> StoreResult<Vec<u8>>;
    /// Queues a document again (a retry, a re-fetch): its passages stay until new ones replace
    /// them. `content`, when given, replaces what is stored.
    async fn requeue_document(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        run_after: Timestamp,
    ) -> StoreResult<()>;
    /// Takes the next ingestion job of any tenant: a queued document whose time has come, or
    /// one whose worker's lease ran out (a crash). It becomes `processing`, leased to the
    /// caller until `lease_until`, and its attempts grow by one.
    /// `only` restricts it to one document (the CLI ingesting what it added).
    async fn claim_document(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        only: Option<&DocumentId>,
    ) -> StoreResult<Option<Document>>;
    /// Puts every `processing` document back in the queue (one instance, starting up: no one
    /// else can be working on them).
    async fn release_documents(&self) -> StoreResult<u64>;
    /// Records what was fetched or read: its hash, type and title, and (when given) the
    /// content, replacing what is stored, with its size and the time it was fetched.
    async fn set_document_content(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        content: Option<&[u8]>,
        content_hash: &str,
        media_type: &str,
        title: &str,
    ) -> StoreResult<()>;
    /// Ends a job: ready (with the embedder's name), failed with a reason, or back in the queue
    /// after `run_after` with the reason of this try.
    async fn finish_document(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        end: DocumentEnd,
    ) -> StoreResult<()>;
    /// URL documents due for a re-fetch, queued again; how many.
    async fn queue_refreshes(&self, now: Timestamp) -> StoreResult<u64>;
}

/// Passages of knowledge documents with their vectors, and their search.
#[async_trait]
pub trait PassageStore: Send + Sync {
    /// A document's passages, in order.
    async fn document_passages(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        limit: u32,
    ) -> StoreResult<Vec<Passage>>;
    /// Starts (or restarts, keeping the first `keep` passages) the document's passages:
    /// passages from `keep` on are removed, progress is `keep` of `total`.
    async fn begin_passages(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        keep: u32,
        total: u32,
        lease_until: Timestamp,
    ) -> StoreResult<()>;
    /// Stores a batch of passages with their vectors, moves progress on and extends the lease.
    async fn add_passages(
        &self,
        tenant: &TenantId,
        kb: &KnowledgeBaseId,
        id: &DocumentId,
        passages: &[NewPassage],
        lease_until: Timestamp,
    ) -> StoreResult<()>;
    /// How many passages the document has stored.
    async fn count_passages(&self, tenant: &TenantId, id: &DocumentId) -> StoreResult<u32>;
    /// A number that changes whenever the tenant's searchable passages do.
    async fn knowledge_generation(&self, tenant: &TenantId) -> StoreResult<i64>;
    /// The tenant's ready documents.
    async fn indexed_documents(&self, tenant: &TenantId) -> StoreResult<Vec<IndexedDocument>>;
    /// A document's passage ids and vectors.
    async fn passage_vectors(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
    ) -> StoreResult<Vec<(i64, Vec<f32>)>>;
    /// Full-text search (BM25 on SQLite) over the ready passages of these knowledge bases
    /// (and these documents, when any are named): passage ids, best first.
    async fn search_passages(
        &self,
        tenant: &TenantId,
        kbs: &[KnowledgeBaseId],
        documents: &[DocumentId],
        query: &str,
        limit: u32,
    ) -> StoreResult<Vec<i64>>;
    /// Passages by id with their document's title and link, in the order asked (ids of other
    /// tenants or of documents no longer ready are left out).
    async fn passages_by_id(
        &self,
        tenant: &TenantId,
        ids: &[i64],
    ) -> StoreResult<Vec<KnowledgeHit>>;
}

/// How an ingestion job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentEnd {
    Ready {
        embedding_model: String,
    },
    Failed {
        reason: String,
    },
    Retry {
        reason: String,
        run_after: Timestamp,
    },
}

/// API keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_api_key(&self, key: &ApiKey, key_hash: &str) -> StoreResult<()>;
    /// The only lookup not scoped by tenant: it is how a request finds its tenant.
    async fn find_api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self, tenant: &TenantId) -> StoreResult<Vec<ApiKey>>;
    async fn get_api_key(&self, tenant: &TenantId, key: &KeyId) -> StoreResult<ApiKey>;
    /// Sets `revoked_at` unless already set, and returns the key.
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key: &KeyId,
        at: Timestamp,
    ) -> StoreResult<ApiKey>;
    async fn touch_api_key(&self, key: &KeyId, at: Timestamp) -> StoreResult<()>;
}

/// Agents and their versions.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Inserts the agent and its first version. A taken slug is `Conflict("slug")`.
    async fn insert_agent(&self, agent: &Agent) -> StoreResult<()>;
    /// Saves `agent` (whose `version` is one more than the stored one) and its version row.
    /// If the stored version is not `agent.version - 1`, another writer won: `Conflict("version")`.
    async fn update_agent(&self, agent: &Agent) -> StoreResult<()>;
    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Agent>;
    /// An agent by id, deleted or not (for conversations that outlive their agent).
    async fn get_agent_any(&self, tenant: &TenantId, agent: &AgentId) -> StoreResult<Agent>;
    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>>;
    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Versions, newest first.
    async fn list_agent_versions(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<AgentVersion>>;
}

/// Conversations and messages.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()>;
    async fn get_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> StoreResult<Conversation>;
    async fn list_conversations(
        &self,
        tenant: &TenantId,
        query: &ConversationQuery,
    ) -> StoreResult<Page<Conversation>>;
    async fn update_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        patch: &ConversationPatch,
        at: Timestamp,
    ) -> StoreResult<Conversation>;
    /// Hides the conversation from every read; its rows stay until purged.
    async fn soft_delete_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Removes the conversation and all its messages for good (deleted or not).
    async fn purge_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> StoreResult<()>;
    /// Appends a message and, in the same transaction, bumps the conversation's counters,
    /// preview, and (for a user message on an untitled conversation) its title.
    async fn append_message(&self, tenant: &TenantId, message: &NewMessage)
        -> StoreResult<Message>;
    /// Tokens of answers created in `[from, to)`, summed by group key and model.
    async fn usage(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
        group: crate::usage::UsageGroup,
    ) -> StoreResult<Vec<crate::usage::UsageRow>>;
    /// Tokens the tenant's answers used in a month (`YYYY-MM`), counted as they are stored.
    async fn tokens_used(&self, tenant: &TenantId, period: &str) -> StoreResult<i64>;
    /// A page of messages and whether more follow.
    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: &MessageQuery,
    ) -> StoreResult<(Vec<Message>, bool)>;
}

/// Who handles a conversation, and its timeline of handoff events.
#[async_trait]
pub trait HandoffStore: Send + Sync {
    /// Sets who handles the conversation if its state is as `expect` says, and appends
    /// `event` to its timeline in the same transaction; `None` (nothing changed) when the
    /// state was otherwise.
    async fn set_handling(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        handling: &crate::handoff::Handling,
        expect: &crate::handoff::Expect,
        event: &crate::handoff::NewEvent,
    ) -> StoreResult<Option<(Conversation, crate::handoff::ConversationEvent)>>;
    /// Appends an event to the conversation's timeline (its next sequence number).
    async fn append_event(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        event: &crate::handoff::NewEvent,
    ) -> StoreResult<crate::handoff::ConversationEvent>;
    /// The conversation's events after `after` (a sequence number), oldest first, at most
    /// `limit`.
    async fn events_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<crate::handoff::ConversationEvent>>;
    /// Conversations of every tenant whose wait for a person ran out by `now`, the earliest
    /// due first (the wait sweep).
    async fn waits_due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Conversation>>;
    /// Sets a user's display name and avatar.
    async fn set_user_profile(
        &self,
        user: &crate::id::UserId,
        name: &str,
        avatar_url: Option<&str>,
    ) -> StoreResult<()>;
}

/// Voice calls: one row per call, written when it starts and as it goes on.
#[async_trait]
pub trait CallStore: Send + Sync {
    async fn insert_call(&self, call: &crate::voice::Call) -> StoreResult<()>;
    /// Replaces what the call holds (its status, transcript, tools, usage, summary).
    async fn update_call(&self, call: &crate::voice::Call) -> StoreResult<()>;
    async fn get_call(
        &self,
        tenant: &TenantId,
        id: &crate::id::CallId,
    ) -> StoreResult<crate::voice::Call>;
    /// Calls of the tenant, newest first.
    async fn list_calls(
        &self,
        tenant: &TenantId,
        query: &crate::voice::CallQuery,
    ) -> StoreResult<Page<crate::voice::Call>>;
    /// The tenant's calls under way.
    async fn active_calls(&self, tenant: &TenantId) -> StoreResult<u32>;
    /// Marks calls of every tenant still `active` and started before `before` as failed
    /// (a process that died with calls under way); how many.
    async fn fail_stale_calls(&self, before: Timestamp, reason: &str) -> StoreResult<u64>;
    /// Sets the telephony provider's id of a call (where none is set yet).
    async fn set_provider_call_id(
        &self,
        tenant: &TenantId,
        id: &crate::id::CallId,
        provider_call_id: &str,
    ) -> StoreResult<()>;
    /// The agent a telephony webhook names by id alone (its URL is the agent's phone
    /// address; the tenant comes from the agent). Deleted agents are not found.
    async fn phone_agent(&self, agent: &AgentId) -> StoreResult<Agent>;
    /// Cuts an answer the caller spoke over to what they heard: its content and text.
    async fn truncate_answer(
        &self,
        tenant: &TenantId,
        message: &MessageId,
        content: &[crate::conversation::ContentPart],
        text: &str,
    ) -> StoreResult<()>;
}

/// The message tree of a conversation: paths, siblings, the active branch.
#[async_trait]
pub trait BranchStore: Send + Sync {
    /// One message of a conversation.
    async fn get_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
    ) -> StoreResult<Message>;
    /// The path from the root to `leaf` (the active message when `None`), oldest first; at
    /// most the last `max` messages of it. Empty for a conversation without messages.
    async fn message_path(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        leaf: Option<&MessageId>,
        max: u32,
    ) -> StoreResult<Vec<Message>>;
    /// `(id, parent_id)` of every message that shares a parent with a message on that same
    /// path (the path's own messages included), in order of arrival.
    async fn path_siblings(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        leaf: Option<&MessageId>,
        max: u32,
    ) -> StoreResult<Vec<(MessageId, Option<MessageId>)>>;
    /// Makes the newest message at or under `message` the active one (switching branches).
    async fn set_active_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
        at: Timestamp,
    ) -> StoreResult<Conversation>;
}

/// Runs that ended or paused: their steps and events, kept so that a run can be replayed after
/// its live log is gone (another instance, a restart, or later than the live retention), and
/// the state of runs waiting for an approval.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Inserts the run, or replaces what is kept of it (a paused run saved again).
    async fn save_run(&self, run: &crate::run::RunRecord) -> StoreResult<()>;
    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<crate::run::RunRecord>;
    /// Moves a run from `awaiting_approval` to `running`; `false` when it was not waiting
    /// (someone else took it, or it never paused). This is what makes one decision win.
    /// `expired` claims only a run whose approval expired before `now` (the sweep); without
    /// it only one that has not (a person's decision comes too late otherwise).
    async fn claim_paused_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
        now: crate::time::Timestamp,
        expired: bool,
    ) -> StoreResult<bool>;
    /// The tenant's runs (in `status` when given), newest first, at most `limit`, without
    /// their events (`events` is empty; [`RunStore::get_run`] reads them).
    async fn list_runs(
        &self,
        tenant: &TenantId,
        status: Option<crate::run::RunStatus>,
        limit: u32,
    ) -> StoreResult<Vec<crate::run::RunRecord>>;
    /// Conversations started and runs (and failed runs) per day in `[from, to)`, and the
    /// durations of the range's latest completed runs.
    async fn activity(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<crate::usage::Activity>;
    /// A conversation's runs, oldest first, at most `limit`, without their events.
    async fn conversation_runs(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<crate::run::RunRecord>>;
    /// The run of a conversation that waits for approvals, if one does.
    async fn paused_run_of(
        &self,
        tenant: &TenantId,
        conversation: &crate::id::ConversationId,
    ) -> StoreResult<Option<RunId>>;
    /// Runs claimed to resume whose claim ran out before `now` (their process died).
    async fn abandoned_claims(
        &self,
        now: crate::time::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, RunId)>>;
    /// Paused runs (of every tenant) whose approval expired before `now`, oldest first.
    async fn expired_approvals(
        &self,
        now: crate::time::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, RunId)>>;
}

/// Provider keys tenants bring, sealed by the domain before they get here.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Inserts or replaces the tenant's key for the provider.
    async fn put_credential(
        &self,
        tenant: &TenantId,
        credential: &crate::credentials::SealedCredential,
    ) -> StoreResult<crate::credentials::CredentialInfo>;
    /// Inserts the credential unless the tenant has one of that name; `false` when it had
    /// (made on first use: of two first uses at once, one wins and both use its value).
    async fn add_credential(
        &self,
        tenant: &TenantId,
        credential: &crate::credentials::SealedCredential,
    ) -> StoreResult<bool>;
    async fn list_credentials(
        &self,
        tenant: &TenantId,
    ) -> StoreResult<Vec<crate::credentials::CredentialInfo>>;
    /// `(provider, sealed)` of every key the tenant stored.
    async fn sealed_credentials(&self, tenant: &TenantId) -> StoreResult<Vec<(String, String)>>;
    async fn delete_credential(&self, tenant: &TenantId, provider: &str) -> StoreResult<()>;
}

/// What starting a turn reads, read at once: one round trip to the database instead of one
/// per row, on the path every chat message takes.
#[derive(Debug, Clone)]
pub struct TurnContext {
    pub conversation: Conversation,
    pub tenant: Tenant,
    /// Tokens the tenant's answers used in the month asked for.
    pub tokens_used: i64,
    /// `(provider, sealed)` of every key the tenant stored.
    pub sealed_credentials: Vec<(String, String)>,
    /// The run of the conversation that waits for approvals, if one does.
    pub paused_run: Option<RunId>,
    /// The conversation's agent; `None` when it was deleted.
    pub agent: Option<Agent>,
    /// The active branch, oldest first, at most the last `max` messages (when asked for;
    /// empty when its leaf is the one the caller knows).
    pub active_path: Option<Vec<Message>>,
}

/// Reads that serve a whole request in one go.
#[async_trait]
pub trait TurnStore: Send + Sync {
    /// The conversation (`NotFound` when it is missing or deleted) with its tenant, the
    /// tenant's tokens used in `period` (`YYYY-MM`) and sealed provider keys, its paused run,
    /// its agent, and, when `history` is `Some(max)`, its active branch — left empty when the
    /// active message is `known` (the caller has that branch already).
    async fn turn_context(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        period: &str,
        history: Option<u32>,
        known: Option<&MessageId>,
    ) -> StoreResult<TurnContext>;
}
