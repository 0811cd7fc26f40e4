//! frontdesk-agents: the run engine.
//!
//! One way in: [`Runner::start`] takes a [`TurnRequest`] from any channel. The parts, each a
//! type or functions over explicit inputs (no module reaches into another's type):
//! - `request`, `options`: what a caller asks for;
//! - `start`: preparing a turn (checks, the user message, the model request);
//! - `turn_loop` ([`TurnLoop`](turn_loop)), `model_step`, `guardrails`, `structured`,
//!   `tools`: the agent loop over `Deps` (its dependencies, passed explicitly);
//! - `conclude`: storing how a run ended or paused; `approvals`: deciding paused runs;
//! - `ports`: the run log and run control, implemented in process by `hub` and `live`.
//!
//! Invariants:
//! - Every turn produces one ordered stream of `RunEvent`s, starting with `run.started` and
//!   always ending with `run.completed`, whatever happened.
//! - A run lives in its own tracked task: a client leaving changes nothing, shutdown waits.
//! - The user message is stored before the model is called; the answer is stored when the
//!   run ends, partial or not.
//!
//! It knows no HTTP: adapters follow the run log.

mod approvals;
mod conclude;
mod deps;
pub mod desk;
mod direct;
pub mod feed;
mod guardrails;
mod history;
pub mod hub;
mod import;
pub mod knowledge;
mod live;
mod model_step;
mod options;
pub mod outbound;
mod outcome;
pub mod ports;
mod recent;
mod request;
pub mod runner;
mod start;
mod structured;
pub mod tools;
mod turn_loop;
mod work;

pub use approvals::{pending_approvals, ApprovalDecision, Decided};
pub use desk::Asked;
pub use direct::DirectTools;
pub use feed::{ConversationFeed, FeedItem};
pub use hub::RunHub;
pub use live::LocalRuns;
pub use outcome::Outcome;
pub use ports::{Follower, Publisher, RunControl, RunLog, RunWriter};
pub use request::{
    AgentMatch, Imported, Input, NewConversationTurn, Target, TurnOptions, TurnRequest,
};
pub use runner::{Runner, RunnerOptions, StartedRun};
pub use tools::webhook::signature as webhook_signature;
