//! The GRU classifier in candle: one GRU layer (PyTorch layout, reset gate
//! applied after the recurrent linear map) over the window, a linear head on
//! the last hidden state, and a sigmoid.

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::rnn::{GRU, GRUConfig, RNN};
use candle_nn::{Linear, Module, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::Result;

/// Names of the parameters in the [`VarMap`], as candle-nn creates them.
pub(crate) const W_IH: &str = "gru.weight_ih_l0";
pub(crate) const W_HH: &str = "gru.weight_hh_l0";
pub(crate) const B_IH: &str = "gru.bias_ih_l0";
pub(crate) const B_HH: &str = "gru.bias_hh_l0";
pub(crate) const HEAD_W: &str = "head.weight";
pub(crate) const HEAD_B: &str = "head.bias";

/// A copy of every parameter by name, for early stopping.
pub(crate) type Snapshot = Vec<(String, Tensor)>;

/// A GRU failure classifier and its trainable parameters.
pub struct GruClassifier {
    gru: GRU,
    head: Linear,
    vars: VarMap,
    features: usize,
    hidden: usize,
}

/// The parameters as plain row-major arrays, in candle/PyTorch gate order (r, z, n).
#[derive(Debug, Clone, PartialEq)]
pub struct GruWeights {
    /// Input features.
    pub features: usize,
    /// Hidden size.
    pub hidden: usize,
    /// `[3 * hidden, features]`, gates r, z, n.
    pub w_ih: Vec<f32>,
    /// `[3 * hidden, hidden]`, gates r, z, n.
    pub w_hh: Vec<f32>,
    /// `[3 * hidden]`.
    pub b_ih: Vec<f32>,
    /// `[3 * hidden]`.
    pub b_hh: Vec<f32>,
    /// `[hidden]`: the head's single output row.
    pub head_w: Vec<f32>,
    /// The head's bias.
    pub head_b: f32,
}

impl GruClassifier {
    /// A new classifier with PyTorch's default initialisation
    /// (uniform in `±1/sqrt(hidden)`), drawn from a generator seeded with `seed`
    /// so the same seed gives the same starting weights.
    ///
    /// # Errors
    /// Candle errors creating the tensors.
    pub fn new(features: usize, hidden: usize, seed: u64) -> Result<Self> {
        let dev = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(seed);
        let bound = 1.0 / (hidden as f32).sqrt();
        let mut uniform = |shape: &[usize]| -> Result<Var> {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            Ok(Var::from_tensor(&Tensor::from_vec(data, shape, &dev)?)?)
        };
        let vars = VarMap::new();
        {
            // Filled before the layers are built: VarBuilder then returns these
            // instead of drawing from candle's unseeded generator.
            let mut data = vars.data().lock().unwrap_or_else(|e| e.into_inner());
            data.insert(W_IH.to_owned(), uniform(&[3 * hidden, features])?);
            data.insert(W_HH.to_owned(), uniform(&[3 * hidden, hidden])?);
            data.insert(B_IH.to_owned(), uniform(&[3 * hidden])?);
            data.insert(B_HH.to_owned(), uniform(&[3 * hidden])?);
            data.insert(HEAD_W.to_owned(), uniform(&[1, hidden])?);
            data.insert(HEAD_B.to_owned(), uniform(&[1])?);
        }
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &dev);
        let gru = candle_nn::rnn::gru(features, hidden, GRUConfig::default(), vb.pp("gru"))?;
        let head = candle_nn::linear(hidden, 1, vb.pp("head"))?;
        Ok(Self {
            gru,
            head,
            vars,
            features,
            hidden,
        })
    }

    /// Input features.
    #[must_use]
    pub fn features(&self) -> usize {
        self.features
    }

    /// Hidden size.
    #[must_use]
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// The trainable variables, for the optimiser.
    #[must_use]
    pub fn vars(&self) -> Vec<Var> {
        self.vars.all_vars()
    }

    /// Logits `[batch, 1]` for input `[batch, window, features]`.
    ///
    /// # Errors
    /// Candle errors (for example a wrong input shape).
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, window, _) = x.dims3()?;
        let mut state = self.gru.zero_state(batch)?;
        for t in 0..window {
            let step = x.narrow(1, t, 1)?.squeeze(1)?;
            state = self.gru.step(&step, &state)?;
        }
        Ok(self.head.forward(&state.h)?)
    }

    /// Failure probabilities for `rows` windows given as a flat row-major
    /// `[rows, window, features]` slice: the trainer's own forward pass.
    ///
    /// # Errors
    /// Candle errors, or a slice whose length is not `rows * window * features`.
    pub fn predict(&self, x: &[f32], rows: usize, window: usize) -> Result<Vec<f32>> {
        if rows == 0 {
            return Ok(Vec::new());
        }
        let x = Tensor::from_slice(x, (rows, window, self.features), &Device::Cpu)?;
        let p = candle_nn::ops::sigmoid(&self.logits(&x)?)?;
        Ok(p.flatten_all()?.to_vec1()?)
    }

    fn var(&self, name: &str) -> Result<Tensor> {
        let data = self.vars.data().lock().unwrap_or_else(|e| e.into_inner());
        Ok(data
            .get(name)
            .map(|v| v.as_tensor().copy())
            .transpose()?
            .expect("parameter created in GruClassifier::new"))
    }

    /// A copy of the current parameters.
    ///
    /// # Errors
    /// Candle errors reading the tensors.
    pub fn weights(&self) -> Result<GruWeights> {
        let flat =
            |name: &str| -> Result<Vec<f32>> { Ok(self.var(name)?.flatten_all()?.to_vec1()?) };
        Ok(GruWeights {
            features: self.features,
            hidden: self.hidden,
            w_ih: flat(W_IH)?,
            w_hh: flat(W_HH)?,
            b_ih: flat(B_IH)?,
            b_hh: flat(B_HH)?,
            head_w: flat(HEAD_W)?,
            head_b: flat(HEAD_B)?[0],
        })
    }

    /// Snapshot of every parameter, for early stopping.
    pub(crate) fn snapshot(&self) -> Result<Snapshot> {
        let data = self.vars.data().lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(data.len());
        for (name, var) in data.iter() {
            out.push((name.clone(), var.as_tensor().copy()?));
        }
        Ok(out)
    }

    /// Restores a [`GruClassifier::snapshot`].
    pub(crate) fn restore(&self, snapshot: &[(String, Tensor)]) -> Result<()> {
        let data = self.vars.data().lock().unwrap_or_else(|e| e.into_inner());
        for (name, tensor) in snapshot {
            if let Some(var) = data.get(name) {
                var.set(tensor)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let a = GruClassifier::new(3, 4, 1).unwrap().weights().unwrap();
        let b = GruClassifier::new(3, 4, 1).unwrap().weights().unwrap();
        let c = GruClassifier::new(3, 4, 2).unwrap().weights().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.w_ih.len(), 12 * 3);
        assert_eq!(a.w_hh.len(), 12 * 4);
        assert!(a.w_ih.iter().all(|w| w.abs() <= 0.5));
    }

    /// The candle step is the PyTorch GRU (linear_before_reset): check one step
    /// against the equations written out by hand.
    #[test]
    fn one_step_matches_the_gru_equations() {
        let m = GruClassifier::new(2, 3, 9).unwrap();
        let w = m.weights().unwrap();
        let x = [0.3f32, -1.2];
        let p = m.predict(&x, 1, 1).unwrap()[0];

        let (h, f) = (3, 2);
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        let gate = |g: usize, j: usize| {
            let row = g * h + j;
            let wi: f32 = (0..f).map(|k| w.w_ih[row * f + k] * x[k]).sum::<f32>() + w.b_ih[row];
            // h_prev = 0, so the recurrent term is its bias only.
            (wi, w.b_hh[row])
        };
        let mut logit = w.head_b;
        for j in 0..h {
            let (ri, rh) = gate(0, j);
            let (zi, zh) = gate(1, j);
            let (ni, nh) = gate(2, j);
            let r = sig(ri + rh);
            let z = sig(zi + zh);
            let n = (ni + r * nh).tanh();
            let h_new = (1.0 - z) * n; // + z * h_prev, which is 0
            logit += w.head_w[j] * h_new;
        }
        assert!((sig(logit) - p).abs() < 1e-6, "{} vs {p}", sig(logit));
    }
}
