//! frontdesk-agents: the Runner and the run hub.
//!
//! Invariants:
//! - Every turn produces one ordered stream of `RunEvent`s, starting with `run.started` and
//!   always ending with `run.completed`, whatever happened.
//! - A run lives in its own tracked task: a client leaving changes nothing, shutdown waits.
//! - The user message is stored before the model is called; the answer is stored when the
//!   run ends, partial or not.
//!
//! It knows no HTTP: adapters read the hub.

mod approvals;
mod conclude;
mod guardrails;
mod history;
pub mod hub;
mod model_step;
pub mod outbound;
mod recent;
pub mod runner;
mod stateless;
mod structured;
pub mod tools;
mod turn;

pub use approvals::{ApprovalDecision, Decided};
pub use hub::{Follower, RunHub};
pub use runner::{Runner, RunnerOptions, StartedRun, TurnInput, TurnOptions};
pub use stateless::{ChainedTurn, Imported, StatelessTurn};
pub use tools::webhook::signature as webhook_signature;
