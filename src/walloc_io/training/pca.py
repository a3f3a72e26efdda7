"""Initialise the linear encoder/decoder pair from PCA of packet coefficients.

A linear encoder followed by a linear decoder is best (in MSE) when it projects onto the
leading principal components of the packet coefficients; starting there lets the nonlinear
decoder spend its training on the residual.
"""

from __future__ import annotations

import torch

from ..model import WallocModel

# Encoder gain: one integer step of the companded latent is 1/(M*sqrt(2/pi)) in z; scaling
# PCA coefficients by GAIN makes that step about STEP in coefficient units.
STEP = 0.1


@torch.no_grad()
def pca_initialise(model: WallocModel, batches: list[torch.Tensor]) -> torch.Tensor:
    """Set encoder/decoder-linear weights from PCA; returns the eigenvalues (descending)."""
    coeffs = torch.cat([_flatten(model.transform(b.double())) for b in batches])
    mean = coeffs.mean(0)
    cov = torch.cov((coeffs - mean).T)
    eigval, eigvec = torch.linalg.eigh(cov)
    order = eigval.argsort(descending=True)[: model.config.latent_channels]
    basis = eigvec[:, order]  # (packet, latent)
    slope = model.companding.amplitude * (2 / torch.pi) ** 0.5
    gain = 1 / (slope * STEP)
    _set(model.encoder, (basis.T * gain), -(basis.T @ mean) * gain)
    _set(model.decoder.linear, basis / gain, mean)
    return eigval[order]


def _flatten(packet: torch.Tensor) -> torch.Tensor:
    return packet.transpose(0, 1).reshape(packet.shape[1], -1).T


def _set(layer: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    # get_parameter: typed as a Parameter, where attribute access on a Module is Tensor | Module
    w, b = layer.get_parameter("weight"), layer.get_parameter("bias")
    w.copy_(weight.reshape(w.shape).to(w.dtype))
    b.copy_(bias.to(b.dtype))
