//! all-MiniLM-L6-v2's encoder (a BERT) written for inference on the CPU with candle.
//!
//! Same weights and the same arithmetic as BERT, arranged to do less work per batch than a
//! general implementation: the query, key and value projections are one matrix product (the
//! attention's 1/√d folded into the query weights), padding is masked by one additive bias
//! per batch, the softmax is candle's fused one over the last dimension, and GELU is the exact
//! (erf) form computed by a rational approximation of erf that vectorises (at most 4e-7 from
//! erf, below f32's resolution of GELU's output in practice).

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::bert::{Config, HiddenAct};
use rayon::prelude::*;

/// A layer norm's parameters.
struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: vb.get(size, "weight")?,
            bias: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&xs.contiguous()?, &self.weight, &self.bias, self.eps)
    }
}

fn linear(vb: VarBuilder, inputs: usize, outputs: usize) -> Result<Linear> {
    Ok(Linear::new(
        vb.get((outputs, inputs), "weight")?,
        Some(vb.get(outputs, "bias")?),
    ))
}

/// One transformer layer.
struct Layer {
    /// Query (pre-scaled), key and value, stacked: `hidden` → `3 × hidden`.
    qkv: Linear,
    out: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    output_norm: Norm,
}

impl Layer {
    fn load(vb: VarBuilder, config: &Config, scale: f64) -> Result<Self> {
        let hidden = config.hidden_size;
        let own = vb.pp("attention.self");
        let part = |name: &str| -> Result<(Tensor, Tensor)> {
            let vb = own.pp(name);
            Ok((vb.get((hidden, hidden), "weight")?, vb.get(hidden, "bias")?))
        };
        let (query_w, query_b) = part("query")?;
        let (key_w, key_b) = part("key")?;
        let (value_w, value_b) = part("value")?;
        let weight = Tensor::cat(&[(query_w * scale)?, key_w, value_w], 0)?;
        let bias = Tensor::cat(&[(query_b * scale)?, key_b, value_b], 0)?;
        let eps = config.layer_norm_eps;
        Ok(Self {
            qkv: Linear::new(weight, Some(bias)),
            out: linear(vb.pp("attention.output.dense"), hidden, hidden)?,
            attention_norm: Norm::load(vb.pp("attention.output.LayerNorm"), hidden, eps)?,
            up: linear(
                vb.pp("intermediate.dense"),
                hidden,
                config.intermediate_size,
            )?,
            down: linear(vb.pp("output.dense"), config.intermediate_size, hidden)?,
            output_norm: Norm::load(vb.pp("output.LayerNorm"), hidden, eps)?,
        })
    }
}

/// The encoder: token ids in, one hidden vector per token out.
pub struct Encoder {
    words: Tensor,
    positions: Tensor,
    /// Every token is of type 0.
    token_type: Tensor,
    norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

impl Encoder {
    /// The weights under `vb` (with or without a `bert.` prefix), as `config` describes them.
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        if config.hidden_act != HiddenAct::Gelu {
            candle_core::bail!("only GELU (erf) encoders are supported");
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            candle_core::bail!("{hidden} hidden units do not split into {heads} heads");
        }
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let embeddings = vb.pp("embeddings");
        let scale = 1.0 / ((hidden / heads) as f64).sqrt();
        let layers = (0..config.num_hidden_layers)
            .map(|index| Layer::load(vb.pp(format!("encoder.layer.{index}")), config, scale))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words: embeddings.get((config.vocab_size, hidden), "word_embeddings.weight")?,
            positions: embeddings.get(
                (config.max_position_embeddings, hidden),
                "position_embeddings.weight",
            )?,
            token_type: embeddings
                .get(
                    (config.type_vocab_size, hidden),
                    "token_type_embeddings.weight",
                )?
                .get(0)?,
            norm: Norm::load(embeddings.pp("LayerNorm"), hidden, config.layer_norm_eps)?,
            layers,
            heads,
            hidden,
        })
    }

    /// `ids` (texts, tokens) and `mask` (texts, tokens; 1 for a token, 0 for padding, f32) in,
    /// (texts, tokens, hidden) out.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (texts, tokens) = ids.dims2()?;
        let (hidden, heads) = (self.hidden, self.heads);
        let head = hidden / heads;
        let words = self
            .words
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((texts, tokens, hidden))?;
        let embedded = words
            .broadcast_add(&self.positions.narrow(0, 0, tokens)?)?
            .broadcast_add(&self.token_type)?;
        let mut xs = self.norm.forward(&embedded)?;
        // 0 where there is a token, a large negative number on padding: (texts, 1, 1, tokens).
        let padding =
            ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((texts, 1, 1, tokens))?;
        for layer in &self.layers {
            let qkv = layer
                .qkv
                .forward(&xs)?
                .reshape((texts, tokens, 3, heads, head))?
                .permute((2, 0, 3, 1, 4))?
                .contiguous()?;
            let (query, key, value) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            let scores = query.matmul(&key.t()?)?.broadcast_add(&padding)?;
            let weights = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = weights
                .matmul(&value)?
                .transpose(1, 2)?
                .reshape((texts, tokens, hidden))?;
            let attended = layer
                .attention_norm
                .forward(&(layer.out.forward(&context)? + &xs)?)?;
            let inner = layer.up.forward(&attended)?.apply_op1_no_bwd(&GeluErf)?;
            xs = layer
                .output_norm
                .forward(&(layer.down.forward(&inner)? + &attended)?)?;
        }
        Ok(xs)
    }
}

/// erf(x) as x·P(x²)/Q(x²) on |x| < 3.9 (fitted here by iterated least squares; at most
/// 4e-7 from erf), ±1 beyond (erf(3.9) rounds to 1 in f32). Plain arithmetic, so a loop of it
/// vectorises.
#[inline]
fn erf(x: f32) -> f32 {
    const P: [f32; 6] = [
        std::f32::consts::FRAC_2_SQRT_PI,
        0.189_664_72,
        0.052_685_548,
        0.003_744_336_8,
        0.000_286_259_22,
        2.079_682_6e-6,
    ];
    const Q: [f32; 6] = [
        1.0,
        0.501_418_3,
        0.113_834_88,
        0.014_923_673,
        0.001_160_912,
        3.847_108_7e-5,
    ];
    let a = x.abs().min(3.9);
    let z = a * a;
    let p = ((((P[5] * z + P[4]) * z + P[3]) * z + P[2]) * z + P[1]) * z + P[0];
    let q = ((((Q[5] * z + Q[4]) * z + Q[3]) * z + Q[2]) * z + Q[1]) * z + Q[0];
    (a * p / q).min(1.0).copysign(x)
}

/// GELU, exact form: x·(1 + erf(x/√2))/2.
struct GeluErf;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-f32"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(all) = storage else {
            candle_core::bail!("gelu-erf-f32 takes f32");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu-erf-f32 takes a contiguous tensor");
        };
        let src = &all[start..end];
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(4096)
            .zip(src.par_chunks(4096))
            .for_each(|(dst, src)| {
                for (out, &x) in dst.iter_mut().zip(src) {
                    *out = 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
                }
            });
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64, to check the approximation against: its Taylor series up to 3 (terms stay
    /// small enough there for 1e-13), and 1 − erfc by erfc's continued fraction beyond.
    fn erf_reference(x: f64) -> f64 {
        let a = x.abs();
        if a > 3.0 {
            let mut fraction = a;
            for k in (1..=80).rev() {
                fraction = a + f64::from(k) / 2.0 / fraction;
            }
            let erfc = (-a * a).exp() / (std::f64::consts::PI.sqrt() * fraction);
            return (1.0 - erfc).copysign(x);
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            let n = f64::from(n);
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
            if term.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_4e_7_everywhere() {
        let mut worst: f64 = 0.0;
        for step in -60_000..=60_000 {
            let x = f64::from(step) / 10_000.0;
            let exact = erf_reference(x);
            worst = worst.max((f64::from(erf(x as f32)) - exact).abs());
        }
        assert!(worst < 4e-7, "worst error {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }
}
