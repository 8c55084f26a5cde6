//! BERT encoder for the CPU: candle tensors and matrix products, the elementwise work
//! fused into the in-place kernels of [`crate::kernels`].
//!
//! Same model, same weights and the same arithmetic as `candle_transformers`' `BertModel`
//! (which stays the path on CUDA and the reference in tests); the differences are in how
//! the work is laid out:
//!
//! - every projection is one `(tokens, in) x (in, out)` product over the whole batch,
//!   with the weights transposed once at load, and Q, K and V come from one product;
//! - bias, activation, residual and LayerNorm are folded into the product's output;
//! - attention runs per sequence and head on Q, K and V in place, over each sequence's
//!   own length instead of a mask over the padding ([`crate::attention`]);
//! - with [`Precision::Bf16`] the four linear layers multiply in bfloat16 ([`crate::bf16`]).

use candle_core::Tensor;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};

use crate::bf16::{has_bf16_kernel, Bf16Weight};
use crate::precision::Precision;
use crate::attention::attention;
use crate::kernels::{Activation, AddBias, BiasActivation, ResidualLayerNorm};

/// A linear layer's `(in, out)` weight, in the precision its products run in.
enum Weight {
    F32(Tensor),
    Bf16(Bf16Weight),
}

impl Weight {
    fn new(w: Tensor, precision: Precision) -> candle_core::Result<Self> {
        Ok(match precision {
            Precision::F32 => Weight::F32(w),
            Precision::Bf16 => Weight::Bf16(Bf16Weight::new(&w, has_bf16_kernel())?),
        })
    }

    /// `x (tokens, in)` times the weight.
    fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Weight::F32(w) => x.matmul(w),
            Weight::Bf16(w) => w.matmul(x),
        }
    }
}

struct Layer {
    qkv_w: Weight, // (hidden, 3 hidden)
    qkv_b: Tensor, // (3 hidden)
    out_w: Weight, // (hidden, hidden)
    out_p: Tensor, // (3, hidden): bias, gamma, beta
    up_w: Weight,  // (hidden, intermediate)
    up_b: Tensor,  // (intermediate)
    down_w: Weight, // (intermediate, hidden)
    down_p: Tensor, // (3, hidden)
}

pub(crate) struct CpuBert {
    word: Tensor,
    position: Tensor,
    token_type0: Tensor, // (hidden): every token has type 0
    emb_norm: (Tensor, Tensor),
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    hidden: usize,
    eps: f32,
    act: Activation,
}

/// `(out, in)` weight of a linear layer, transposed to `(in, out)` and made contiguous.
fn weight_t(vb: &VarBuilder, out: usize, inp: usize) -> candle_core::Result<Tensor> {
    vb.get((out, inp), "weight")?.t()?.contiguous()
}

/// `[bias; gamma; beta]` of a dense layer followed by its LayerNorm.
fn norm_params(dense: &VarBuilder, norm: &VarBuilder, h: usize) -> candle_core::Result<Tensor> {
    Tensor::stack(&[dense.get(h, "bias")?, norm.get(h, "weight")?, norm.get(h, "bias")?], 0)
}

impl CpuBert {
    pub(crate) fn load(vb: VarBuilder, config: &Config, precision: Precision) -> candle_core::Result<Self> {
        if config.position_embedding_type != PositionEmbeddingType::Absolute {
            candle_core::bail!("only absolute position embeddings are supported")
        }
        let vb = [String::new(), "bert".into(), config.model_type.clone().unwrap_or_default()]
            .into_iter()
            .map(|p| if p.is_empty() { vb.clone() } else { vb.pp(p) })
            .find(|vb| vb.contains_tensor("embeddings.word_embeddings.weight"))
            .unwrap_or(vb);
        let (h, i, n) = (config.hidden_size, config.intermediate_size, config.num_attention_heads);
        if n == 0 || h % n != 0 {
            candle_core::bail!("hidden_size {h} is not a multiple of num_attention_heads {n}")
        }
        let emb = vb.pp("embeddings");
        let layers = (0..config.num_hidden_layers)
            .map(|l| {
                let vb = vb.pp(format!("encoder.layer.{l}"));
                let (att, inter, output) = (vb.pp("attention"), vb.pp("intermediate"), vb.pp("output"));
                let qkv = ["query", "key", "value"].map(|p| att.pp("self").pp(p));
                let weight = |w: candle_core::Result<Tensor>| Weight::new(w?, precision);
                Ok(Layer {
                    qkv_w: weight(Tensor::cat(&qkv.iter().map(|p| weight_t(p, h, h)).collect::<candle_core::Result<Vec<_>>>()?, 1))?,
                    qkv_b: Tensor::cat(&qkv.iter().map(|p| p.get(h, "bias")).collect::<candle_core::Result<Vec<_>>>()?, 0)?,
                    out_w: weight(weight_t(&att.pp("output.dense"), h, h))?,
                    out_p: norm_params(&att.pp("output.dense"), &att.pp("output.LayerNorm"), h)?,
                    up_w: weight(weight_t(&inter.pp("dense"), i, h))?,
                    up_b: inter.pp("dense").get(i, "bias")?,
                    down_w: weight(weight_t(&output.pp("dense"), h, i))?,
                    down_p: norm_params(&output.pp("dense"), &output.pp("LayerNorm"), h)?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(CpuBert {
            word: emb.get((config.vocab_size, h), "word_embeddings.weight")?,
            position: emb.get((config.max_position_embeddings, h), "position_embeddings.weight")?,
            token_type0: emb.get((config.type_vocab_size, h), "token_type_embeddings.weight")?.get(0)?,
            emb_norm: (emb.get(h, "LayerNorm.weight")?, emb.get(h, "LayerNorm.bias")?),
            layers,
            heads: n,
            head_dim: h / n,
            hidden: h,
            eps: config.layer_norm_eps as f32,
            act: match config.hidden_act {
                HiddenAct::Gelu => Activation::GeluErf,
                HiddenAct::GeluApproximate => Activation::GeluTanh,
                HiddenAct::Relu => Activation::Relu,
            },
        })
    }

    /// Last hidden state, `(batch, len, hidden)`, of padded token ids `(batch, len)`; only
    /// the first `lengths[i]` tokens of sequence `i` are real.
    pub(crate) fn forward(&self, ids: &Tensor, lengths: &[u32]) -> candle_core::Result<Tensor> {
        let (b, len) = ids.dims2()?;
        let (h, heads, d) = (self.hidden, self.heads, self.head_dim);
        let tokens = b * len;

        let pos = self.position.narrow(0, 0, len)?.broadcast_add(&self.token_type0)?;
        let x = self.word.index_select(&ids.flatten_all()?, 0)?.reshape((b, len, h))?.broadcast_add(&pos)?;
        let mut x = candle_nn::ops::layer_norm(&x, &self.emb_norm.0, &self.emb_norm.1, self.eps)?.reshape((tokens, h))?;

        for l in &self.layers {
            let qkv = l.qkv_w.matmul(&x)?;
            qkv.inplace_op2(&l.qkv_b, &AddBias)?;
            let ctx = attention(&qkv, lengths, len, heads, d)?; // (tokens, h)

            let attended = l.out_w.matmul(&ctx)?;
            attended.inplace_op3(&x, &l.out_p, &ResidualLayerNorm { eps: self.eps })?;
            let up = l.up_w.matmul(&attended)?;
            up.inplace_op2(&l.up_b, &BiasActivation(self.act))?;
            let down = l.down_w.matmul(&up)?;
            down.inplace_op3(&attended, &l.down_p, &ResidualLayerNorm { eps: self.eps })?;
            x = down;
        }
        x.reshape((b, len, h))
    }
}
