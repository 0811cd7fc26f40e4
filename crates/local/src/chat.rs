//! The local chat model: a GGUF run by llama.cpp on worker threads.
//!
//! Each model loads once (on first use, or at start when asked) and gets `parallel` worker
//! threads, each with its own llama.cpp context. Requests wait in a bounded queue; a full
//! queue answers "rate limited" so the Runner retries or falls back. A worker streams tokens
//! through a channel and stops decoding the moment its receiver is gone (a cancelled run frees
//! its slot at once).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream};
use frontdesk_core::run::FinishReason;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::constrain::{self, Shape};
use crate::{catalog, prompt, LocalError};
use llguidance::ParserFactory;

/// How the local models run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// Where model files live (`<dir>/<name>/model.gguf` or `<dir>/<name>.gguf`).
    pub models_dir: PathBuf,
    /// Requests decoded at once per model (one llama.cpp context each).
    pub parallel: usize,
    /// Requests that may wait for a slot before new ones are turned away.
    pub queue: usize,
    /// CPU threads per decode.
    pub threads: i32,
    /// Context window per slot, in tokens (at most the model's training context).
    pub context: u32,
}

impl Default for LocalConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            models_dir: PathBuf::from("./models"),
            parallel: 1,
            queue: 64,
            threads: i32::try_from(cores.min(8)).unwrap_or(2),
            context: 4096,
        }
    }
}

/// How much lower than the server's own threads a model's threads run (a nice value): when
/// both want the CPU, forwarding a token or answering a request goes first, and decoding
/// still gets every cycle nobody else wants. llama.cpp's compute threads inherit it.
const MODEL_NICENESS: i32 = 10;

/// The largest answer when the request names no `max_tokens`.
const DEFAULT_MAX_TOKENS: u32 = 512;
/// Tokens a prompt is fed to llama.cpp in.
const BATCH: usize = 512;

fn backend() -> Result<&'static LlamaBackend, LocalError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut backend| {
                    backend.void_logs();
                    backend
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LocalError::Load(format!("llama.cpp did not start: {e}")))
}

/// One decode job.
struct Job {
    tokens: Vec<LlamaToken>,
    sampling: Sampling,
    shape: Shape,
    out: mpsc::Sender<Result<ModelEvent, ModelError>>,
}

#[derive(Debug, Clone, Copy)]
struct Sampling {
    temperature: f32,
    top_p: f32,
    top_k: i32,
    repeat_penalty: f32,
    seed: u32,
    max_tokens: u32,
}

impl Sampling {
    fn of(request: &ModelRequest) -> Self {
        Self {
            temperature: request.temperature.map_or(0.7, |t| t as f32),
            top_p: request.top_p.map_or(0.95, |p| p as f32),
            top_k: 40,
            repeat_penalty: 1.1,
            seed: 42,
            max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        }
    }

    fn sampler(&self, n_vocab: i32) -> LlamaSampler {
        if self.temperature <= 0.0 {
            return LlamaSampler::chain_simple([
                LlamaSampler::penalties(n_vocab, 64, self.repeat_penalty, 0.0, 0.0),
                LlamaSampler::greedy(),
            ]);
        }
        LlamaSampler::chain_simple([
            LlamaSampler::penalties(n_vocab, 64, self.repeat_penalty, 0.0, 0.0),
            LlamaSampler::top_k(self.top_k),
            LlamaSampler::top_p(self.top_p, 1),
            LlamaSampler::temp(self.temperature),
            LlamaSampler::dist(self.seed),
        ])
    }
}

/// A loaded model and its queue.
struct Engine {
    model: Arc<LlamaModel>,
    jobs: SyncSender<Job>,
    context: u32,
}

/// A model's constraint parser factory, built on the first constrained request (it walks the
/// vocabulary) and shared by the model's workers.
type FactoryCell = OnceLock<Result<Arc<ParserFactory>, String>>;

fn factory(cell: &FactoryCell, model: &LlamaModel) -> Result<Arc<ParserFactory>, ModelError> {
    cell.get_or_init(|| {
        let env = LlamaSampler::llguidance_tok_env(model);
        let mut built = ParserFactory::new_simple(&env).map_err(|e| e.to_string())?;
        built.quiet();
        Ok(Arc::new(built))
    })
    .clone()
    .map_err(|e| ModelError::Config(format!("cannot prepare constrained decoding: {e}")))
}

/// The shape a request's output takes and its prompt tokens.
fn prompt_of(
    model: &LlamaModel,
    request: &ModelRequest,
) -> Result<(Shape, Vec<LlamaToken>), ModelError> {
    let shape = Shape::of(request);
    let tokens =
        prompt::tokenize(model, request, &shape).map_err(|e| ModelError::Config(e.to_string()))?;
    Ok((shape, tokens))
}

/// A model's engine, loaded once by whichever request comes first.
type EngineCell = Arc<tokio::sync::OnceCell<Arc<Engine>>>;

/// The `local` model provider.
#[derive(Clone)]
pub struct LocalChat {
    config: LocalConfig,
    engines: Arc<Mutex<HashMap<String, EngineCell>>>,
    /// Tokens decoded so far, all models together (for metrics and tests).
    decoded: Arc<AtomicU64>,
}

impl std::fmt::Debug for LocalChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChat")
            .field("models_dir", &self.config.models_dir)
            .finish()
    }
}

impl LocalChat {
    pub fn new(config: LocalConfig) -> Self {
        Self {
            config,
            engines: Arc::default(),
            decoded: Arc::default(),
        }
    }

    /// Tokens generated so far by all local models.
    pub fn tokens_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    /// The prompt a request becomes: each token's id and whether it is a control token.
    pub async fn inspect_prompt(
        &self,
        request: &ModelRequest,
    ) -> Result<Vec<(i32, bool)>, ModelError> {
        let engine = self.engine(&request.model).await?;
        let (_, tokens) = prompt_of(&engine.model, request)?;
        let vocab = engine.model.vocab();
        Ok(tokens
            .into_iter()
            .map(|token| (token.0, vocab.is_control(token)))
            .collect())
    }

    /// Loads `model` now rather than on its first request.
    pub async fn preload(&self, model: &str) -> Result<(), ModelError> {
        self.engine(model).await.map(|_| ())
    }

    async fn engine(&self, model: &str) -> Result<Arc<Engine>, ModelError> {
        let cell = {
            let mut engines = self
                .engines
                .lock()
                .map_err(|_| ModelError::Config("the local model table is poisoned".into()))?;
            engines.entry(model.to_owned()).or_default().clone()
        };
        let config = self.config.clone();
        let decoded = self.decoded.clone();
        let name = model.to_owned();
        cell.get_or_try_init(|| async move {
            let path = catalog::chat_model_path(&config.models_dir, &name).ok_or_else(|| {
                ModelError::Config(format!(
                    "the local model `{name}` is not in {}: run `frontdesk models fetch` (or put a GGUF file at {}/{name}.gguf)",
                    config.models_dir.display(),
                    config.models_dir.display()
                ))
            })?;
            tokio::task::spawn_blocking(move || start_engine(&path, &config, decoded))
                .await
                .map_err(|e| ModelError::Config(format!("loading the local model failed: {e}")))?
                .map(Arc::new)
                .map_err(|e| ModelError::Config(e.to_string()))
        })
        .await
        .cloned()
    }
}

fn start_engine(
    path: &Path,
    config: &LocalConfig,
    decoded: Arc<AtomicU64>,
) -> Result<Engine, LocalError> {
    let backend = backend()?;
    let started = std::time::Instant::now();
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| LocalError::Load(format!("{}: {e}", path.display())))?;
    let model = Arc::new(model);
    let context = config.context.min(model.n_ctx_train()).max(256);
    let (jobs, queue) = sync_channel::<Job>(config.queue.max(1));
    let queue = Arc::new(Mutex::new(queue));
    let factory = Arc::new(FactoryCell::new());
    for slot in 0..config.parallel.max(1) {
        let (model, queue, decoded) = (model.clone(), queue.clone(), decoded.clone());
        let factory = factory.clone();
        let threads = config.threads;
        std::thread::Builder::new()
            .name(format!("local-model-{slot}"))
            .spawn(move || worker(&model, &factory, &queue, context, threads, &decoded))
            .map_err(|e| LocalError::Load(format!("cannot start a model thread: {e}")))?;
    }
    tracing::info!(model = %path.display(), context, slots = config.parallel, ms = started.elapsed().as_millis() as u64, "local model loaded");
    Ok(Engine {
        model,
        jobs,
        context,
    })
}

/// A slot: one context, jobs one after another until the engine goes away.
fn worker(
    model: &LlamaModel,
    factory: &FactoryCell,
    queue: &Mutex<Receiver<Job>>,
    n_ctx: u32,
    threads: i32,
    decoded: &AtomicU64,
) {
    let Ok(backend) = backend() else { return };
    run_below_the_server();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(error) => {
            tracing::error!(%error, "cannot create a llama.cpp context");
            return;
        }
    };
    loop {
        let job = match queue.lock() {
            Ok(queue) => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
            Err(_) => return,
        };
        if let Err(error) = run_job(model, factory, &mut ctx, &job, decoded) {
            let _ = job.out.blocking_send(Err(error));
        }
    }
}

/// Lowers this thread's priority to [`MODEL_NICENESS`] (Linux, where a nice value is per
/// thread and new threads inherit it); elsewhere the model runs at the normal priority.
fn run_below_the_server() {
    #[cfg(target_os = "linux")]
    if let Err(error) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), MODEL_NICENESS)
    {
        tracing::debug!(%error, "cannot lower the model thread's priority");
    }
}

fn decode_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Upstream {
        status: 500,
        message: format!("the local model failed: {e}"),
    }
}

/// Prefills the prompt and decodes until the end of the turn, the token budget or the end of
/// the context; stops as soon as nobody listens.
fn run_job(
    model: &LlamaModel,
    factory_cell: &FactoryCell,
    ctx: &mut LlamaContext<'_>,
    job: &Job,
    decoded: &AtomicU64,
) -> Result<(), ModelError> {
    ctx.clear_kv_cache();
    let n_ctx = ctx.n_ctx() as usize;
    let prompt = &job.tokens;
    if prompt.is_empty() || prompt.len() >= n_ctx {
        return Err(ModelError::Config(format!(
            "the prompt has {} tokens; the local model's context holds {n_ctx}",
            prompt.len()
        )));
    }
    let mut batch = LlamaBatch::new(BATCH, 1);
    for (chunk_idx, chunk) in prompt.chunks(BATCH).enumerate() {
        batch.clear();
        let base = chunk_idx * BATCH;
        for (idx, token) in chunk.iter().enumerate() {
            let pos = base + idx;
            batch
                .add(*token, pos as i32, &[0], pos + 1 == prompt.len())
                .map_err(decode_error)?;
        }
        ctx.decode(&mut batch).map_err(decode_error)?;
    }
    let vocab = model.vocab();
    let mut sampler = match job.shape.schema() {
        // The constraint sees only the answer: the prompt is not fed to it.
        Some(schema) => LlamaSampler::chain_simple([
            constrain::sampler(&*factory(factory_cell, model)?, schema)?,
            job.sampling.sampler(model.n_vocab()),
        ]),
        None => {
            let mut sampler = job.sampling.sampler(model.n_vocab());
            sampler.accept_many(prompt.iter());
            sampler
        }
    };
    let streams = job.shape.streams();
    let mut buffered = String::new();
    let mut pos = prompt.len();
    let mut generated: u32 = 0;
    let mut pending: Vec<u8> = Vec::new();
    let finish = loop {
        if generated >= job.sampling.max_tokens || pos >= n_ctx {
            break FinishReason::Length;
        }
        let token = sampler.sample(ctx, batch.n_tokens() - 1);
        generated += 1;
        decoded.fetch_add(1, Ordering::Relaxed);
        if vocab.is_eog(token) {
            break FinishReason::Stop;
        }
        pending.extend(vocab.token_to_piece(token, false, None));
        let text = take_utf8(&mut pending);
        if !streams {
            buffered.push_str(&text);
            if job.out.is_closed() {
                return Ok(()); // cancelled
            }
        } else if !text.is_empty()
            && job
                .out
                .blocking_send(Ok(ModelEvent::TextDelta(text)))
                .is_err()
        {
            return Ok(()); // cancelled: the slot is free again
        }
        batch.clear();
        batch
            .add(token, pos as i32, &[0], true)
            .map_err(decode_error)?;
        ctx.decode(&mut batch).map_err(decode_error)?;
        pos += 1;
    };
    if !pending.is_empty() {
        let text = String::from_utf8_lossy(&pending).into_owned();
        if streams {
            let _ = job.out.blocking_send(Ok(ModelEvent::TextDelta(text)));
        } else {
            buffered.push_str(&text);
        }
    }
    let mut finish = finish;
    if !streams {
        if finish == FinishReason::Length {
            return Err(ModelError::Protocol(
                "the local model ran out of tokens before its tool call or answer was complete"
                    .to_owned(),
            ));
        }
        let call_id = format!("call_{}", frontdesk_core::id::new_body().to_lowercase());
        let events = job.shape.finish(&buffered, &call_id)?;
        finish = Shape::finish_reason(&events);
        for event in events {
            let _ = job.out.blocking_send(Ok(event));
        }
    }
    let usage = Usage {
        prompt_tokens: prompt.len() as i64,
        completion_tokens: i64::from(generated),
        total_tokens: prompt.len() as i64 + i64::from(generated),
    };
    let _ = job.out.blocking_send(Ok(ModelEvent::Usage(usage)));
    let _ = job.out.blocking_send(Ok(ModelEvent::Finish(finish)));
    Ok(())
}

/// The longest valid UTF-8 prefix of `bytes`, removed from it (a character may span tokens).
fn take_utf8(bytes: &mut Vec<u8>) -> String {
    let valid = match std::str::from_utf8(bytes) {
        Ok(text) => text.len(),
        Err(error) if error.error_len().is_some() => {
            // Invalid, not merely cut: replace it rather than wait forever.
            let text = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            return text;
        }
        Err(error) => error.valid_up_to(),
    };
    let rest = bytes.split_off(valid);
    String::from_utf8(std::mem::replace(bytes, rest)).unwrap_or_default()
}

#[async_trait]
impl ModelProvider for LocalChat {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        let engine = self.engine(&request.model).await?;
        let (shape, tokens) = prompt_of(&engine.model, &request)?;
        let (out, events) = mpsc::channel(64);
        let job = Job {
            tokens,
            sampling: Sampling::of(&request),
            shape,
            out,
        };
        match engine.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(ModelError::RateLimited {
                    retry_after: Some(Duration::from_secs(1)),
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ModelError::Config("the local model stopped".into()))
            }
        }
        Ok(Box::pin(futures_util::stream::unfold(
            events,
            |mut events| async move { events.recv().await.map(|item| (item, events)) },
        )))
    }

    fn context_window(&self, model: &str) -> Option<u32> {
        let engines = self.engines.lock().ok()?;
        let loaded = engines
            .get(model)
            .and_then(|cell| cell.get().map(|e| e.context));
        Some(loaded.unwrap_or(self.config.context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_is_cut_only_between_characters() {
        let mut bytes = "hé".as_bytes().to_vec();
        let last = bytes.pop().unwrap_or_default();
        assert_eq!(take_utf8(&mut bytes), "h");
        bytes.push(last);
        assert_eq!(take_utf8(&mut bytes), "é");
        assert!(bytes.is_empty());
        let mut broken = vec![b'a', 0xff, b'b'];
        assert_eq!(take_utf8(&mut broken), "a\u{fffd}b");
    }
}
