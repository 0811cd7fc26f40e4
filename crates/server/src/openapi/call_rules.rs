//! What the server checks about voice settings and the calls API, said in the OpenAPI
//! document (the rest of the rules are in `constraints`).

use serde_json::{json, Value};

use super::constraints::{range, text, AGENT_REF, MODEL, PHONE, SLUG};

/// `(schema, pointer, what to add)`.
pub(super) fn properties() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "VoiceSettings",
            "/properties/realtime_model",
            json!({"pattern": MODEL, "maxLength": 200}),
        ),
        (
            "VoiceSettings",
            "/properties/transcription_model",
            json!({"pattern": MODEL, "maxLength": 200}),
        ),
        (
            "VoiceSettings",
            "/properties/speech_model",
            json!({"pattern": MODEL, "maxLength": 200}),
        ),
        (
            "VoiceSettings",
            "/properties/supervisor",
            json!({"pattern": SLUG}),
        ),
        ("VoiceSettings", "/properties/voice", text(1, 64)),
        ("VoiceSettings", "/properties/greeting", text(1, 1_000)),
        ("VoiceSettings", "/properties/filler", text(1, 200)),
        (
            "VoiceSettings",
            "/properties/languages",
            json!({"maxItems": 10, "items": {"maxLength": 35, "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"}}),
        ),
        (
            "VoiceSettings",
            "/properties/transfer_number",
            json!({"pattern": PHONE}),
        ),
        (
            "VoiceSettings",
            "/properties/phone_number",
            json!({"pattern": PHONE}),
        ),
        (
            "VoiceSettings",
            "/properties/max_call_seconds",
            range(10, 14_400),
        ),
        (
            "TurnDetection",
            "/properties/type",
            json!({"enum": ["server_vad", "semantic_vad", "none"]}),
        ),
        (
            "TurnDetection",
            "/properties/threshold",
            json!({"minimum": 0.0, "maximum": 1.0}),
        ),
        (
            "TurnDetection",
            "/properties/prefix_padding_ms",
            range(0, 10_000),
        ),
        (
            "TurnDetection",
            "/properties/silence_duration_ms",
            range(0, 10_000),
        ),
        (
            "TurnDetection",
            "/properties/eagerness",
            json!({"enum": ["low", "medium", "high", "auto"]}),
        ),
        (
            "PlaceCall",
            "/properties/agent",
            json!({"pattern": AGENT_REF}),
        ),
        ("PlaceCall", "/properties/to", json!({"pattern": PHONE})),
        ("PlaceCall", "/properties/from", json!({"pattern": PHONE})),
    ]
}

/// `(path, method, parameter, what to add)`.
pub(super) fn parameters() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    vec![
        (
            "/api/v1/calls",
            "get",
            "agent",
            json!({"pattern": AGENT_REF}),
        ),
        (
            "/api/v1/calls",
            "get",
            "status",
            json!({"enum": ["active", "completed", "failed", "transferred"]}),
        ),
        (
            "/api/v1/calls",
            "get",
            "channel",
            json!({"enum": ["phone", "browser"]}),
        ),
        ("/api/v1/calls", "get", "q", json!({"maxLength": 200})),
        (
            "/api/v1/agents/{agent}/realtime-client-secrets",
            "post",
            "agent",
            json!({"pattern": AGENT_REF}),
        ),
    ]
}
