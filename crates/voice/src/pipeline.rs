//! The pipeline, for models without a realtime API: frontdesk hears the caller (voice
//! activity detection), transcribes each utterance (`POST …/audio/transcriptions`), answers
//! it with an ordinary text turn of the agent's own chat model (any provider, the embedded
//! one too), and speaks the answer sentence by sentence (`POST …/audio/speech`) as the model
//! writes it. The caller speaking over the answer stops playback and the turn (barge-in); the
//! stored answer keeps what they heard.

use std::collections::HashMap;
use std::time::Duration;

use frontdesk_core::conversation::Message;
use frontdesk_core::id::RunId;
use frontdesk_core::run::RunEvent;
use frontdesk_core::voice::CallStatus;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bridge::{Ending, PhoneLine};
use crate::call::CallLog;
use crate::codec::{self, Downsampler, Format};
use crate::error::{Result, VoiceError};
use crate::host::{HttpModel, VoiceHost};
use crate::leg::{Leg, LegEvent};
use crate::playback::{heard_text, Playback};
use crate::supervisor::TRANSFER_CALL;

/// Audio sent to the caller per frame (ms).
const FRAME_MS: u64 = 20;
/// Loudness (RMS, 0–1) that counts as speech.
const SPEECH_LOUDNESS: f32 = 0.02;
/// How long a goodbye may play after the agent ended the call.
const GOODBYE_GRACE: Duration = Duration::from_secs(8);
/// The longest utterance transcribed (longer speech is cut here).
const MAX_UTTERANCE_MS: u64 = 30_000;

/// Voice activity detection by loudness: speech starts after `min_speech_ms` of frames
/// above the threshold and ends after `silence_ms` below it; `prefix_ms` before the start
/// is kept.
#[derive(Debug)]
pub struct Vad {
    threshold: f32,
    silence_ms: u64,
    min_speech_ms: u64,
    prefix_ms: u64,
    voiced_ms: u64,
    quiet_ms: u64,
    speaking: bool,
    /// Audio before speech started (PCM at the leg's rate), bounded by `prefix_ms`.
    prefix: std::collections::VecDeque<(Vec<i16>, u64)>,
    utterance: Vec<i16>,
    utterance_ms: u64,
}

/// What a frame did.
#[derive(Debug, PartialEq)]
pub enum Heard {
    Nothing,
    SpeechStarted,
    /// The caller stopped: their utterance's samples.
    SpeechEnded(Vec<i16>),
}

impl Vad {
    pub fn new(threshold: f32, silence_ms: u64, prefix_ms: u64) -> Self {
        Self {
            threshold,
            silence_ms,
            min_speech_ms: 100,
            prefix_ms,
            voiced_ms: 0,
            quiet_ms: 0,
            speaking: false,
            prefix: std::collections::VecDeque::new(),
            utterance: Vec::new(),
            utterance_ms: 0,
        }
    }

    /// Feeds `samples` lasting `ms`.
    pub fn push(&mut self, samples: Vec<i16>, ms: u64) -> Heard {
        let loud = codec::rms(&samples) >= self.threshold;
        if !self.speaking {
            self.voiced_ms = if loud { self.voiced_ms + ms } else { 0 };
            self.prefix.push_back((samples, ms));
            while self.prefix.iter().map(|(_, m)| m).sum::<u64>()
                > self.prefix_ms + self.min_speech_ms
            {
                self.prefix.pop_front();
            }
            if self.voiced_ms >= self.min_speech_ms {
                self.speaking = true;
                self.quiet_ms = 0;
                for (chunk, chunk_ms) in self.prefix.drain(..) {
                    self.utterance.extend(chunk);
                    self.utterance_ms += chunk_ms;
                }
                return Heard::SpeechStarted;
            }
            return Heard::Nothing;
        }
        self.utterance.extend(samples);
        self.utterance_ms += ms;
        self.quiet_ms = if loud { 0 } else { self.quiet_ms + ms };
        if self.quiet_ms >= self.silence_ms || self.utterance_ms >= MAX_UTTERANCE_MS {
            self.speaking = false;
            self.voiced_ms = 0;
            self.utterance_ms = 0;
            return Heard::SpeechEnded(std::mem::take(&mut self.utterance));
        }
        Heard::Nothing
    }
}

/// Transcribes `samples` (mono at `rate`) with an OpenAI-compatible `/audio/transcriptions`.
pub async fn transcribe(
    http: &reqwest::Client,
    model: &HttpModel,
    samples: &[i16],
    rate: u32,
    language: Option<&str>,
) -> Result<String> {
    let part = reqwest::multipart::Part::bytes(codec::wav(samples, rate))
        .file_name("speech.wav")
        .mime_str("audio/wav")
        .map_err(|e| VoiceError::Upstream(e.to_string()))?;
    let mut form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("model", model.model.clone())
        .text("response_format", "json");
    if let Some(language) = language {
        form = form.text(
            "language",
            language.split('-').next().unwrap_or(language).to_owned(),
        );
    }
    let response = model
        .authorize(http.post(model.url("audio/transcriptions")))
        .multipart(form)
        .send()
        .await
        .map_err(|e| {
            VoiceError::Upstream(format!(
                "speech-to-text did not answer: {}",
                e.without_url()
            ))
        })?;
    if !response.status().is_success() {
        return Err(VoiceError::Upstream(format!(
            "speech-to-text answered {}",
            response.status()
        )));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| VoiceError::Upstream(format!("speech-to-text sent no JSON: {e}")))?;
    Ok(body
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// Speaks `text` with an OpenAI-compatible `/audio/speech`: PCM16 at 24 kHz (raw `pcm`,
/// or a WAV at any rate, resampled).
pub async fn synthesize(
    http: &reqwest::Client,
    model: &HttpModel,
    text: &str,
    voice: &str,
) -> Result<Vec<i16>> {
    let response = model
        .authorize(http.post(model.url("audio/speech")))
        .json(
            &json!({"model": model.model, "input": text, "voice": voice, "response_format": "pcm"}),
        )
        .send()
        .await
        .map_err(|e| {
            VoiceError::Upstream(format!(
                "text-to-speech did not answer: {}",
                e.without_url()
            ))
        })?;
    if !response.status().is_success() {
        return Err(VoiceError::Upstream(format!(
            "text-to-speech answered {}",
            response.status()
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| VoiceError::Upstream(format!("text-to-speech broke off: {e}")))?;
    Ok(match codec::wav_samples(&bytes) {
        Some((samples, rate)) => codec::resample_to_24k(&samples, rate),
        None => codec::pcm_samples(&bytes),
    })
}

/// Splits off the sentences `text` holds whole (the rest waits for more words).
pub fn take_sentences(text: &mut String) -> Vec<String> {
    let mut sentences = Vec::new();
    loop {
        let end = text.char_indices().find_map(|(i, c)| {
            let next = text[i + c.len_utf8()..].chars().next();
            (matches!(c, '.' | '!' | '?' | '\n') && next.is_some_and(char::is_whitespace))
                .then_some(i + c.len_utf8())
        });
        let Some(end) = end else {
            return sentences;
        };
        let sentence = text[..end].trim().to_owned();
        text.replace_range(..end, "");
        if !sentence.is_empty() {
            sentences.push(sentence);
        }
    }
}

/// What the turn's task reports.
enum Said {
    /// What the caller said (the transcription's result).
    Transcribed(std::result::Result<String, String>),
    /// Audio of an answer (its run; none for the greeting) in the leg's format, and its words.
    Audio(Option<RunId>, Vec<u8>, String),
    Done {
        run_id: RunId,
        message: Option<Box<Message>>,
        action: Option<(String, Value)>,
    },
    Failed(String),
}

struct Speaking {
    run_id: Option<RunId>,
    stop: CancellationToken,
    /// The words sent so far and their audio (ms).
    text: String,
    sent_ms: u64,
    heard: Option<String>,
}

/// Runs a call through the pipeline until it ends.
pub async fn run(log: &mut CallLog, leg: &mut dyn Leg, _phone: Option<PhoneLine>) -> Ending {
    log.store_lines(false);
    let voice = log.agent.spec.voice.clone();
    let host = log.host().clone();
    let tenant = log.agent.tenant_id.clone();
    let (Some(stt), Some(tts)) = (&voice.transcription_model, &voice.speech_model) else {
        let _ = leg.end("This assistant cannot take voice calls yet.").await;
        return Ending {
            status: CallStatus::Failed,
            error: Some("the agent needs voice.realtime_model, or voice.transcription_model and voice.speech_model".to_owned()),
        };
    };
    let models = match (
        host.http_model(&tenant, stt).await,
        host.http_model(&tenant, tts).await,
    ) {
        (Ok(stt), Ok(tts)) => (stt, tts),
        (Err(error), _) | (_, Err(error)) => {
            let _ = leg
                .end("This assistant cannot take voice calls right now.")
                .await;
            return Ending {
                status: CallStatus::Failed,
                error: Some(error.to_string()),
            };
        }
    };
    let format = leg.format();
    let detection = voice.turn_detection.clone().unwrap_or_default();
    // The pipeline hears by loudness; the realtime detector's `threshold` (a probability)
    // does not apply here, its silence and padding do.
    let mut vad = Vad::new(
        SPEECH_LOUDNESS,
        u64::from(detection.silence_duration_ms.unwrap_or(600)),
        u64::from(detection.prefix_padding_ms.unwrap_or(300)),
    );
    let (tx, mut rx) = mpsc::channel::<Said>(64);
    let mut playback = Playback::default();
    let mut speaking: Option<Speaking> = None;
    // The last answer whose turn ended, while its audio may still play: its words and audio.
    let mut last_spoken: Option<(String, u64)> = None;
    // Turns the caller spoke over or past: what they heard of each, for when they end.
    let mut superseded: HashMap<RunId, String> = HashMap::new();
    let mut ending: Option<Ending> = None;
    let (mut frames_in, mut frames_out) = (0u64, 0u64);
    if let Some(greeting) = voice.greeting.clone() {
        log.agent_said(None, &greeting).await;
        speaking = Some(speak_text(
            &host,
            &models.1,
            voice.voice.as_deref(),
            format,
            greeting,
            tx.clone(),
        ));
    }
    let shutdown = host.shutdown().clone();
    // The timers are made once: the call's limit, then a goodbye's grace.
    let timer = tokio::time::sleep(voice.max_call());
    let stopping = shutdown.cancelled();
    tokio::pin!(timer, stopping);
    let done = |ending: &mut Option<Ending>| {
        ending.take().unwrap_or(Ending {
            status: CallStatus::Completed,
            error: None,
        })
    };
    let outcome = loop {
        tokio::select! {
            event = leg.recv() => match event {
                LegEvent::Audio(audio) => {
                    frames_in += 1;
                    let audio = audio.bytes();
                    let samples = match format {
                        Format::Pcmu => audio.iter().map(|&b| codec::mulaw_decode(b)).collect(),
                        Format::Pcm24k => codec::pcm_samples(&audio),
                    };
                    let ms = format.duration_ms(audio.len()).max(1);
                    match vad.push(samples, ms) {
                        Heard::Nothing => {}
                        Heard::SpeechStarted => {
                            // Barge-in: the answer stops where the caller heard it, whether
                            // its turn is still going or only its audio is.
                            if playback.playing() || speaking.as_ref().is_some_and(|s| s.run_id.is_some()) {
                                let _ = leg.clear().await;
                                let cut = playback.interrupt();
                                if let Some(current) = speaking.as_mut().filter(|s| s.heard.is_none()) {
                                    let heard_ms = cut.as_ref().map_or(current.sent_ms, |cut| cut.heard_ms);
                                    current.heard = Some(heard_text(&current.text, heard_ms, current.sent_ms));
                                    current.stop.cancel();
                                    if let Some(run) = &current.run_id {
                                        let _ = host.runner().cancel(&tenant, run);
                                    }
                                } else if let (Some(cut), Some((text, sent_ms))) = (cut, last_spoken.take()) {
                                    log.cut_last_answer(&heard_text(&text, cut.heard_ms, sent_ms)).await;
                                }
                            }
                        }
                        Heard::SpeechEnded(samples) => {
                            // Transcribed in its own task: the call goes on meanwhile.
                            let rate = match format { Format::Pcmu => 8_000, Format::Pcm24k => 24_000 };
                            let (http, stt, language, tx) = (host.http().clone(), models.0.clone(), voice.languages.first().cloned(), tx.clone());
                            tokio::spawn(async move {
                                let text = transcribe(&http, &stt, &samples, rate, language.as_deref()).await;
                                let _ = tx.send(Said::Transcribed(text.map_err(|e| e.to_string()))).await;
                            });
                        }
                    }
                }
                LegEvent::Mark(name) => {
                    playback.marked(&name);
                    if ending.is_some() && speaking.is_none() && !playback.playing() {
                        break done(&mut ending);
                    }
                }
                LegEvent::Dtmf(_) | LegEvent::Bad(_) => {}
                LegEvent::Hangup => break done(&mut ending),
            },
            Some(said) = rx.recv() => match said {
                Said::Transcribed(Ok(text)) if !text.is_empty() && ending.is_none() => {
                    log.caller_said(&text).await;
                    let _ = leg.caption(frontdesk_core::voice::Speaker::Caller, &text).await;
                    if let Some(previous) = speaking.take() {
                        previous.stop.cancel();
                        if let Some(run) = previous.run_id {
                            let _ = host.runner().cancel(&tenant, &run);
                            superseded.insert(run, previous.heard.unwrap_or(previous.text));
                        }
                    }
                    speaking = start_turn(&host, log, text, &models.1, voice.voice.as_deref(), format, tx.clone()).await;
                }
                Said::Transcribed(Ok(_)) => {}
                Said::Transcribed(Err(error)) => tracing::warn!(call = %log.call.id, %error, "an utterance could not be transcribed"),
                Said::Audio(run, audio, words) => {
                    // Only the current turn's audio, and not once the caller spoke over it.
                    let Some(current) = speaking.as_mut().filter(|s| s.run_id == run && s.heard.is_none()) else { continue };
                    let item = run.as_ref().map_or("greeting".to_owned(), ToString::to_string);
                    let frame_bytes = (format.bytes_per_ms() * FRAME_MS) as usize;
                    for frame in audio.chunks(frame_bytes) {
                        let ms = format.duration_ms(frame.len());
                        let frame = codec::Audio::Raw(frame.to_vec());
                        let sent = match playback.sent(&item, ms) {
                            Some(mark) => leg.audio_marked(&frame, &mark).await,
                            None => leg.audio(&frame).await,
                        };
                        if sent.is_err() { break; }
                        frames_out += 1;
                        current.sent_ms += ms;
                    }
                    if let Some(mark) = playback.flush() {
                        let _ = leg.mark(&mark).await;
                    }
                    if !current.text.is_empty() { current.text.push(' '); }
                    current.text.push_str(&words);
                }
                Said::Done { run_id, message, action } => {
                    let current = speaking.as_ref().is_some_and(|s| s.run_id.as_ref() == Some(&run_id));
                    let heard = if current {
                        let finished = speaking.take();
                        match finished {
                            Some(turn) if turn.heard.is_none() => {
                                last_spoken = Some((turn.text, turn.sent_ms));
                                None
                            }
                            Some(turn) => turn.heard,
                            None => None,
                        }
                    } else {
                        // A turn the caller spoke past: what they heard of it, nothing more.
                        Some(superseded.remove(&run_id).unwrap_or_default())
                    };
                    if let Some(message) = &message {
                        log.answered(message, heard.as_deref()).await;
                        let _ = leg.caption(frontdesk_core::voice::Speaker::Agent, heard.as_deref().unwrap_or(&message.text())).await;
                    }
                    // Only a turn the caller let finish ends or transfers the call.
                    if let (Some((name, args)), true, None) = (action, current, &heard) {
                        ending = Some(act(log, &name, args).await);
                        if !playback.playing() {
                            break done(&mut ending);
                        }
                        timer.as_mut().reset(tokio::time::Instant::now() + GOODBYE_GRACE);
                    }
                    log.checkpoint().await;
                }
                Said::Failed(error) => {
                    tracing::warn!(call = %log.call.id, %error, "the answer could not be spoken");
                    if speaking.as_ref().is_some_and(|s| s.run_id.is_none()) {
                        speaking = None;
                    }
                }
            },
            () = &mut timer => {
                break match ending.take() {
                    Some(ending) => ending,
                    None => Ending { status: CallStatus::Completed, error: Some("the call reached its time limit".to_owned()) },
                };
            }
            () = &mut stopping => break Ending { status: CallStatus::Failed, error: Some("the server stopped during the call".to_owned()) },
        }
    };
    if let Some(current) = speaking {
        current.stop.cancel();
        if let Some(run) = &current.run_id {
            let _ = host.runner().cancel(&tenant, run);
        }
    }
    log.frames(frames_in, frames_out);
    let _ = leg.end("the call ended").await;
    outcome
}

/// The agent ended or transferred the call (to the team's inbox: a pipeline call has no
/// Twilio REST handle of its own here; a number transfer is recorded for the `<Dial>`).
async fn act(log: &mut CallLog, name: &str, args: Value) -> Ending {
    let output = match name {
        TRANSFER_CALL if crate::turns::to_inbox(log, &args).await => "the team will follow up",
        TRANSFER_CALL => "the team is away",
        _ => "ended",
    };
    crate::turns::record(log, name, args, output);
    Ending {
        status: CallStatus::Completed,
        error: None,
    }
}

/// Speaks a fixed text (the greeting).
fn speak_text(
    host: &VoiceHost,
    tts: &HttpModel,
    voice: Option<&str>,
    format: Format,
    text: String,
    tx: mpsc::Sender<Said>,
) -> Speaking {
    let stop = CancellationToken::new();
    let (http, tts, voice, token) = (
        host.http().clone(),
        tts.clone(),
        voice.unwrap_or("alloy").to_owned(),
        stop.clone(),
    );
    tokio::spawn(async move {
        let spoken = tokio::select! {
            spoken = synthesize(&http, &tts, &text, &voice) => spoken,
            () = token.cancelled() => return,
        };
        let _ = tx
            .send(match spoken {
                Ok(samples) => Said::Audio(None, to_leg(&samples, format), text),
                Err(error) => Said::Failed(error.to_string()),
            })
            .await;
    });
    Speaking {
        run_id: None,
        stop,
        text: String::new(),
        sent_ms: 0,
        heard: None,
    }
}

/// PCM16 24 kHz samples in the leg's format.
fn to_leg(samples: &[i16], format: Format) -> Vec<u8> {
    match format {
        Format::Pcm24k => codec::pcm_bytes(samples),
        Format::Pcmu => Downsampler::default().pcm24k_to_pcmu(&codec::pcm_bytes(samples)),
    }
}

/// Starts a turn answering `said`, speaking its sentences as they come.
async fn start_turn(
    host: &VoiceHost,
    log: &CallLog,
    said: String,
    tts: &HttpModel,
    voice: Option<&str>,
    format: Format,
    tx: mpsc::Sender<Said>,
) -> Option<Speaking> {
    let started = crate::turns::start(log, said).await?;
    let stop = CancellationToken::new();
    let run_id = started.run_id.clone();
    let (http, tts, voice, token) = (
        host.http().clone(),
        tts.clone(),
        voice.unwrap_or("alloy").to_owned(),
        stop.clone(),
    );
    let mut events = started.events;
    let id = run_id.clone();
    tokio::spawn(async move {
        let mut pending = String::new();
        let mut message = None;
        while let Some(event) = events.next().await {
            match event.event {
                RunEvent::MessageDelta { text } if !token.is_cancelled() => {
                    pending.push_str(&text);
                    for sentence in take_sentences(&mut pending) {
                        match synthesize(&http, &tts, &sentence, &voice).await {
                            Ok(samples) if !token.is_cancelled() => {
                                let _ = tx
                                    .send(Said::Audio(
                                        Some(id.clone()),
                                        to_leg(&samples, format),
                                        sentence,
                                    ))
                                    .await;
                            }
                            Ok(_) => {}
                            Err(error) => {
                                let _ = tx.send(Said::Failed(error.to_string())).await;
                            }
                        }
                    }
                }
                RunEvent::MessageCompleted { message: m } => message = Some(*m),
                _ => {}
            }
        }
        let rest = pending.trim().to_owned();
        if !rest.is_empty() && !token.is_cancelled() {
            if let Ok(samples) = synthesize(&http, &tts, &rest, &voice).await {
                let _ = tx
                    .send(Said::Audio(
                        Some(id.clone()),
                        to_leg(&samples, format),
                        rest,
                    ))
                    .await;
            }
        }
        let action = crate::turns::action(message.as_ref());
        let _ = tx
            .send(Said::Done {
                run_id: id,
                message: message.map(Box::new),
                action,
            })
            .await;
    });
    Some(Speaking {
        run_id: Some(run_id),
        stop,
        text: String::new(),
        sent_ms: 0,
        heard: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u64, amplitude: f64) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| (f64::sin(i as f64 * 0.1) * amplitude) as i16)
            .collect()
    }

    #[test]
    fn speech_is_found_between_silences() {
        let mut vad = Vad::new(0.02, 300, 100);
        let mut started = false;
        let mut ended = None;
        for frame in 0..100 {
            let loud = (20..50).contains(&frame);
            let samples = tone(20, if loud { 8_000.0 } else { 20.0 });
            match vad.push(samples, 20) {
                Heard::SpeechStarted => started = true,
                Heard::SpeechEnded(samples) => ended = Some((frame, samples.len())),
                Heard::Nothing => {}
            }
        }
        assert!(started);
        let (frame, len) = ended.expect("speech ended");
        // 300 ms of silence after frame 49 ends it at frame 64.
        assert_eq!(frame, 64);
        // The utterance holds the speech, its silence tail and up to 200 ms before it.
        assert!(
            (30 * 480 + 15 * 480..=30 * 480 + 15 * 480 + 10 * 480).contains(&len),
            "{len}"
        );
    }

    #[test]
    fn sentences_are_taken_as_they_complete() {
        let mut text = "We have ten. And half past two".to_owned();
        assert_eq!(take_sentences(&mut text), vec!["We have ten."]);
        assert_eq!(text, " And half past two");
        text.push_str("! Which suits you? ");
        assert_eq!(
            take_sentences(&mut text),
            vec!["And half past two!", "Which suits you?"]
        );
        // A decimal point is not a sentence end.
        let mut price = "It costs 4.50 euros".to_owned();
        assert!(take_sentences(&mut price).is_empty());
    }
}
