//! Audio: G.711 μ-law (the telephone codec Twilio streams, 8 kHz), 16-bit little-endian
//! PCM (browsers and realtime models, 24 kHz), conversion between the two rates, durations
//! and a loudness measure for voice-activity detection.
//!
//! μ-law follows ITU-T G.711: a sign bit, a 3-bit segment and 4 bits of mantissa over a
//! biased magnitude, all bits inverted. Rate conversion 8 kHz ↔ 24 kHz is by 3: upsampling
//! interpolates linearly; downsampling averages each 3 samples through a short low-pass
//! (a [1 2 3 2 1]/9 kernel), which keeps speech well under the 4 kHz telephone band.

/// A codec on one side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// G.711 μ-law, 8 kHz mono: one byte per sample.
    Pcmu,
    /// 16-bit little-endian PCM, 24 kHz mono: two bytes per sample.
    Pcm24k,
}

impl Format {
    /// Bytes of audio per millisecond.
    pub fn bytes_per_ms(self) -> u64 {
        match self {
            Format::Pcmu => 8,
            Format::Pcm24k => 48,
        }
    }

    /// How long `bytes` of this audio play, in milliseconds.
    pub fn duration_ms(self, bytes: usize) -> u64 {
        bytes as u64 / self.bytes_per_ms()
    }

    /// The Realtime API's name of the format (GA session config).
    pub fn realtime(self) -> serde_json::Value {
        match self {
            Format::Pcmu => serde_json::json!({"type": "audio/pcmu"}),
            Format::Pcm24k => serde_json::json!({"type": "audio/pcm", "rate": 24_000}),
        }
    }
}

/// Audio as it travels: base64 (its form on Twilio's and the Realtime API's sockets) or raw
/// bytes (a browser's binary frames). A bridge between two base64 sides passes the text
/// through untouched; it is decoded only where the bytes are needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audio {
    Base64(String),
    Raw(Vec<u8>),
}

impl Audio {
    /// Its length in bytes (decoded).
    pub fn len(&self) -> usize {
        match self {
            Audio::Raw(bytes) => bytes.len(),
            Audio::Base64(text) => {
                let padding = text.bytes().rev().take_while(|&b| b == b'=').count();
                (text.len() / 4 * 3).saturating_sub(padding)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn base64(&self) -> std::borrow::Cow<'_, str> {
        use base64::Engine as _;
        match self {
            Audio::Base64(text) => std::borrow::Cow::Borrowed(text),
            Audio::Raw(bytes) => {
                std::borrow::Cow::Owned(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }

    /// The bytes (empty when the base64 does not decode: it was checked on arrival).
    pub fn bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        use base64::Engine as _;
        match self {
            Audio::Raw(bytes) => std::borrow::Cow::Borrowed(bytes),
            Audio::Base64(text) => std::borrow::Cow::Owned(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Whether `text` is standard base64 (alphabet, padding, length), checked without decoding.
pub fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let body = bytes.len() - bytes.iter().rev().take_while(|&&b| b == b'=').count();
    bytes.len() - body <= 2
        && bytes[..body]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// Encodes one linear sample as μ-law.
pub fn mulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && pcm & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one μ-law byte to a linear sample.
pub fn mulaw_decode(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    let value = if sign != 0 { -magnitude } else { magnitude };
    value as i16
}

/// 16-bit little-endian PCM bytes as samples (a trailing odd byte is dropped).
pub fn pcm_samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect()
}

/// Samples as 16-bit little-endian PCM bytes.
pub fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 2);
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// μ-law 8 kHz → PCM16 24 kHz, with the last sample of the previous chunk (`carry`) so
/// chunk boundaries interpolate smoothly.
pub fn pcmu_to_pcm24k(mulaw: &[u8], carry: &mut i16) -> Vec<u8> {
    let mut out = Vec::with_capacity(mulaw.len() * 6);
    for &byte in mulaw {
        let next = mulaw_decode(byte);
        let prev = i32::from(*carry);
        let step = i32::from(next) - prev;
        for k in 1..=3 {
            let sample = (prev + step * k / 3) as i16;
            out.extend_from_slice(&sample.to_le_bytes());
        }
        *carry = next;
    }
    out
}

/// Keeps the samples a chunk left over between calls of [`pcm24k_to_pcmu`].
#[derive(Debug, Default, Clone)]
pub struct Downsampler {
    /// The last two input samples (the low-pass looks back) and unconsumed ones.
    history: [i32; 2],
    pending: Vec<i16>,
    odd_byte: Option<u8>,
}

impl Downsampler {
    /// PCM16 24 kHz → μ-law 8 kHz. Input may split anywhere, even inside a sample.
    pub fn pcm24k_to_pcmu(&mut self, pcm: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(pcm.len() + 1);
        if let Some(b) = self.odd_byte.take() {
            bytes.push(b);
        }
        bytes.extend_from_slice(pcm);
        if bytes.len() % 2 == 1 {
            self.odd_byte = bytes.pop();
        }
        self.pending.extend(pcm_samples(&bytes));
        let whole = self.pending.len() / 3 * 3;
        let mut out = Vec::with_capacity(whole / 3);
        for triple in self.pending[..whole].chunks_exact(3) {
            let [a, b, c] = [
                i32::from(triple[0]),
                i32::from(triple[1]),
                i32::from(triple[2]),
            ];
            // [1 2 3 2 1] / 9 centred on `b`'s neighbourhood: h1, h0(=prev), a, b, c.
            let filtered = (self.history[0] + 2 * self.history[1] + 3 * a + 2 * b + c) / 9;
            self.history = [b, c];
            out.push(mulaw_encode(filtered.clamp(-32_768, 32_767) as i16));
        }
        self.pending.drain(..whole);
        out
    }
}

/// Root-mean-square loudness of PCM16 samples, 0–1.
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    ((sum / samples.len() as f64).sqrt() / 32_768.0) as f32
}

/// A WAV file (RIFF, PCM16 mono) around samples: what `/audio/transcriptions` takes.
pub fn wav(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&pcm_bytes(samples));
    out
}

/// The PCM16 mono samples and rate of a WAV file (the first `data` chunk), for speech a
/// text-to-speech server returns as WAV.
pub fn wav_samples(bytes: &[u8]) -> Option<(Vec<i16>, u32)> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut rate = None;
    let mut channels = 1u16;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = bytes.get(at + 8..(at + 8 + len).min(bytes.len()))?;
        if id == b"fmt " && body.len() >= 16 {
            let format = u16::from_le_bytes([body[0], body[1]]);
            channels = u16::from_le_bytes([body[2], body[3]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            if format != 1 || bits != 16 || channels == 0 {
                return None;
            }
            rate = Some(u32::from_le_bytes([body[4], body[5], body[6], body[7]]));
        } else if id == b"data" {
            let samples = pcm_samples(body);
            let mono = if channels > 1 {
                samples
                    .chunks(usize::from(channels))
                    .map(|frame| frame[0])
                    .collect()
            } else {
                samples
            };
            return rate.map(|rate| (mono, rate));
        }
        at += 8 + len + (len & 1);
    }
    None
}

/// Resamples PCM16 mono from `from` Hz to 24 kHz by linear interpolation (speech a
/// text-to-speech server made at another rate).
pub fn resample_to_24k(samples: &[i16], from: u32) -> Vec<i16> {
    if from == 24_000 || samples.is_empty() || from == 0 {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * 24_000 / u64::from(from)) as usize;
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * f64::from(from) / 24_000.0;
            let idx = pos as usize;
            let frac = pos - idx as f64;
            let a = f64::from(samples[idx.min(samples.len() - 1)]);
            let b = f64::from(samples[(idx + 1).min(samples.len() - 1)]);
            (a + (b - a) * frac) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_matches_g711_reference_points() {
        // Values from the G.711 tables: silence, full scale and a mid value.
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_encode(-1), 0x7F);
        assert_eq!(mulaw_encode(32_767), 0x80);
        assert_eq!(mulaw_encode(-32_768), 0x00);
        assert_eq!(mulaw_decode(0xFF), 0);
        assert_eq!(mulaw_decode(0x80), 32_124);
        assert_eq!(mulaw_decode(0x00), -32_124);
        // Every code decodes and encodes back to itself (0x7F is negative zero: 0xFF).
        for code in 0..=255u8 {
            let back = mulaw_encode(mulaw_decode(code));
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(back, expected, "code {code:#x}");
        }
    }

    #[test]
    fn mulaw_error_stays_within_its_segment_step() {
        for sample in (-32_000i32..32_000).step_by(97) {
            let decoded = i32::from(mulaw_decode(mulaw_encode(sample as i16)));
            let error = (decoded - sample).abs();
            // The step doubles per segment: at most 1/16 of the magnitude plus the bias.
            assert!(error <= sample.abs() / 16 + 8, "{sample} → {decoded}");
        }
    }

    #[test]
    fn a_tone_survives_the_round_trip_through_both_rates() {
        // 440 Hz at 8 kHz, μ-law → 24 kHz PCM → μ-law.
        let tone: Vec<u8> = (0..800)
            .map(|i| {
                let t = i as f64 / 8_000.0;
                mulaw_encode((f64::sin(2.0 * std::f64::consts::PI * 440.0 * t) * 12_000.0) as i16)
            })
            .collect();
        let mut carry = 0;
        let pcm = pcmu_to_pcm24k(&tone, &mut carry);
        assert_eq!(pcm.len(), tone.len() * 6);
        assert_eq!(Format::Pcm24k.duration_ms(pcm.len()), 100);
        let mut down = Downsampler::default();
        // Split at odd places: inside samples and triples.
        let mut back = down.pcm24k_to_pcmu(&pcm[..1001]);
        back.extend(down.pcm24k_to_pcmu(&pcm[1001..]));
        assert_eq!(back.len(), tone.len());
        let original: Vec<i16> = tone.iter().map(|&b| mulaw_decode(b)).collect();
        let returned: Vec<i16> = back.iter().map(|&b| mulaw_decode(b)).collect();
        let loudness = (rms(&original), rms(&returned));
        assert!(
            (loudness.0 - loudness.1).abs() / loudness.0 < 0.15,
            "{loudness:?}"
        );
        // The shape holds, a sample or so behind (the filter's delay).
        let correlation: f64 = original[..790]
            .iter()
            .zip(&returned[1..791])
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum::<f64>()
            / original[..790]
                .iter()
                .map(|&a| f64::from(a).powi(2))
                .sum::<f64>();
        assert!(correlation > 0.8, "correlation {correlation}");
    }

    #[test]
    fn base64_audio_passes_through_and_knows_its_length() {
        for len in 0..10 {
            let bytes: Vec<u8> = (0..len).collect();
            let text = Audio::Raw(bytes.clone()).base64().into_owned();
            assert!(is_base64(&text), "{text}");
            let audio = Audio::Base64(text);
            assert_eq!(audio.len(), bytes.len());
            assert_eq!(audio.bytes().as_ref(), bytes.as_slice());
        }
        for bad in ["%%%%", "abc", "a===", "ab=c"] {
            assert!(!is_base64(bad), "{bad}");
        }
    }

    #[test]
    fn wav_files_round_trip_and_resample() {
        let samples: Vec<i16> = (0..1_600).map(|i| (i % 200 * 100) as i16).collect();
        let file = wav(&samples, 16_000);
        let (read, rate) = wav_samples(&file).unwrap_or_default();
        assert_eq!((read.len(), rate), (1_600, 16_000));
        assert_eq!(resample_to_24k(&read, rate).len(), 2_400);
        assert!(wav_samples(b"not a wav file").is_none());
    }
}
