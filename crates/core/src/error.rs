//! The one error type of the domain, with a stable `code`, a `type` and an HTTP status.
//!
//! Clients branch on `code`; the table below (`code`, `kind`, `status`) is the contract.
//! Every match here is exhaustive, so a new variant forces a decision about its wire shape.

use std::fmt;

/// What went wrong in a store operation. Store implementations return this; the domain turns
/// it into an [`Error`] with a code a client understands.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist in this tenant (or was deleted).
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint was violated; the string names what was duplicated.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The database could not be reached or answered with an error.
    #[error(transparent)]
    Backend(#[from] anyhow::Error),
}

/// A domain error, carried to the client as `{"error": {"type", "code", "message"}}`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist in the caller's tenant (another tenant's object included).
    #[error("{resource} not found")]
    NotFound { resource: &'static str },
    /// A field failed validation; `field` names it (dotted path).
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    /// The request as a whole is malformed (bad JSON, bad cursor, bad query).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request conflicts with existing state (a slug already taken).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// No credentials, or credentials that do not identify anyone.
    #[error("{message}")]
    Unauthenticated { code: &'static str, message: String },
    /// Valid credentials that may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A run waits for people to approve tool calls (409): the body names the run and the
    /// calls, so a caller can decide them (`POST /api/v1/runs/{run_id}/approvals/{call_id}`).
    #[error("{message}")]
    AwaitingApproval {
        code: &'static str,
        message: String,
        run_id: crate::id::RunId,
        pending: Vec<crate::run::PendingApproval>,
    },
    /// People handle the conversation: the message was stored for them and no run started
    /// (answered 202 with the stored message, not as a failure).
    #[error("a person handles this conversation: the message was stored for them")]
    ForPeople {
        message: Box<crate::conversation::Message>,
    },
    /// Too many requests for this key; retry after the given seconds.
    #[error("{message}")]
    RateLimited {
        retry_after_secs: u64,
        message: String,
    },
    /// The tenant's quota for the period is spent.
    #[error("{message}")]
    QuotaExceeded {
        retry_after_secs: u64,
        message: String,
    },
    /// The body or a part of it is larger than allowed.
    #[error("{message}")]
    PayloadTooLarge { message: String },
    /// The client sent its body too slowly.
    #[error("{message}")]
    RequestTimeout { message: String },
    /// A provider we called (a model) failed; the message says how.
    #[error("{message}")]
    Upstream { message: String },
    /// The store (or another dependency we need) cannot be reached right now.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Our own fault. The message is logged, never sent to the client.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// Broad classes of error, sent as `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    Conflict,
    RateLimit,
    Api,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::Conflict => "conflict_error",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api => "api_error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// A field-level validation error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A request-level error (400).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// Wraps an internal failure with context.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Error::Internal(error.into())
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::InvalidField { .. } => "invalid_field",
            Error::BadRequest { code, .. }
            | Error::Conflict { code, .. }
            | Error::Unauthenticated { code, .. }
            | Error::Forbidden { code, .. }
            | Error::AwaitingApproval { code, .. } => code,
            Error::ForPeople { .. } => "handled_by_human",
            Error::RateLimited { .. } => "rate_limited",
            Error::QuotaExceeded { .. } => "quota_exceeded",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RequestTimeout { .. } => "body_timeout",
            Error::Upstream { .. } => "upstream_error",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal_error",
        }
    }

    /// The broad class, sent as `type`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::InvalidField { .. }
            | Error::BadRequest { .. }
            | Error::PayloadTooLarge { .. }
            | Error::RequestTimeout { .. } => ErrorKind::InvalidRequest,
            Error::Conflict { .. } | Error::AwaitingApproval { .. } | Error::ForPeople { .. } => {
                ErrorKind::Conflict
            }
            Error::Unauthenticated { .. } => ErrorKind::Authentication,
            Error::Forbidden { .. } => ErrorKind::Permission,
            Error::RateLimited { .. } | Error::QuotaExceeded { .. } => ErrorKind::RateLimit,
            Error::Upstream { .. } | Error::Unavailable(_) | Error::Internal(_) => ErrorKind::Api,
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound { .. } => 404,
            Error::InvalidField { .. } => 422,
            Error::BadRequest { .. } => 400,
            Error::Conflict { .. } | Error::AwaitingApproval { .. } => 409,
            Error::ForPeople { .. } => 202,
            Error::Unauthenticated { .. } => 401,
            Error::Forbidden { .. } => 403,
            Error::RateLimited { .. } | Error::QuotaExceeded { .. } => 429,
            Error::PayloadTooLarge { .. } => 413,
            Error::RequestTimeout { .. } => 408,
            Error::Upstream { .. } => 502,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// Seconds a client should wait before retrying, where that is known.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::RateLimited {
                retry_after_secs, ..
            }
            | Error::QuotaExceeded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Error::Unavailable(_) => Some(1),
            Error::NotFound { .. }
            | Error::InvalidField { .. }
            | Error::BadRequest { .. }
            | Error::Conflict { .. }
            | Error::AwaitingApproval { .. }
            | Error::ForPeople { .. }
            | Error::Unauthenticated { .. }
            | Error::Forbidden { .. }
            | Error::PayloadTooLarge { .. }
            | Error::RequestTimeout { .. }
            | Error::Upstream { .. }
            | Error::Internal(_) => None,
        }
    }

    /// The message safe to show a client. Internal details stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "An internal error occurred. It has been logged.".to_owned(),
            Error::Unavailable(_) => {
                "The service is temporarily unavailable. Retry shortly.".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// What the error body carries beside `type`, `code` and `message`: the paused run and
    /// its pending calls for [`Error::AwaitingApproval`].
    pub fn details(&self) -> Option<serde_json::Value> {
        match self {
            Error::AwaitingApproval {
                run_id, pending, ..
            } => Some(serde_json::json!({"run_id": run_id, "pending": pending})),
            Error::ForPeople { message } => {
                Some(serde_json::json!({"handler": "human", "message": message}))
            }
            _ => None,
        }
    }

    /// A run of `run_id` that waits for `pending` calls to be decided.
    pub fn awaiting_approval(
        code: &'static str,
        run_id: crate::id::RunId,
        pending: Vec<crate::run::PendingApproval>,
    ) -> Self {
        Error::AwaitingApproval {
            code,
            message: format!(
                "run {run_id} waits for a tool call to be approved: decide it (POST /api/v1/runs/{run_id}/approvals/{{call_id}}) or cancel it (POST /api/v1/runs/{run_id}/cancel) first"
            ),
            run_id,
            pending,
        }
    }

    /// The field a validation error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidField { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Turns a store error about `resource` into a domain error.
    pub fn from_store(resource: &'static str, error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Error::NotFound { resource },
            StoreError::Conflict(what) => Error::Conflict {
                code: "already_exists",
                message: format!("a {resource} with this {what} already exists"),
            },
            StoreError::Backend(error) => Error::Internal(error),
        }
    }
}

/// Results of domain operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_table_holds() {
        let cases: Vec<(Error, &str, &str, u16)> = vec![
            (
                Error::NotFound { resource: "agent" },
                "not_found",
                "not_found_error",
                404,
            ),
            (
                Error::invalid("name", "too long"),
                "invalid_field",
                "invalid_request_error",
                422,
            ),
            (
                Error::bad_request("invalid_json", "x"),
                "invalid_json",
                "invalid_request_error",
                400,
            ),
            (
                Error::RateLimited {
                    retry_after_secs: 3,
                    message: "slow".into(),
                },
                "rate_limited",
                "rate_limit_error",
                429,
            ),
            (
                Error::internal(anyhow::anyhow!("db password is hunter2")),
                "internal_error",
                "api_error",
                500,
            ),
        ];
        for (error, code, kind, status) in cases {
            assert_eq!(
                (error.code(), error.kind().as_str(), error.status()),
                (code, kind, status)
            );
        }
        let internal = Error::internal(anyhow::anyhow!("db password is hunter2"));
        assert!(!internal.public_message().contains("hunter2"));
    }
}
