"""PSNR, SSIM and IFC exactly as the super-resolution literature computes them.

All three take 2-D float arrays on the 0..255 scale (the shaved luminance of
the reference and of the prediction), compute in float64 and return a Python
float. Definitions follow ``protocol.md`` (restated in ``docs/evaluation.md``):

* PSNR: ``10 log10(255^2 / MSE)``; identical images give ``inf``.
* SSIM: Wang et al.'s reference ``ssim_index`` (11x11 Gaussian, sigma 1.5,
  K1 = 0.01, K2 = 0.03, L = 255, statistics over the valid region, no
  downsampling), the mean of the SSIM map.
* IFC: Sheikh et al.'s vector-GSM ``ifcvec`` on a 4-level, 6-orientation
  steerable pyramid (pyrtools), divided by the number of pixels.
"""

import math

import numpy as np
import pyrtools

_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03

_IFC_LEVELS = 4
_IFC_ORDER = 5  # sp5 filters: 6 orientations
_IFC_M = 3  # GSM neighbourhood and block size
# The reference's band numbering (coarsest level first, orientations 5..0,
# index 1 = low-pass residual): orientations 3 and 0 of every level.
_IFC_SUBBANDS = (4, 7, 10, 13, 16, 19, 22, 25)
_IFC_TOL = 1e-15
_IFC_SIGMA_NSQ = 1e-10


def _pair(name, reference, distorted):
    reference = np.asarray(reference, dtype=np.float64)
    distorted = np.asarray(distorted, dtype=np.float64)
    if reference.ndim != 2 or reference.shape != distorted.shape:
        raise ValueError(
            f"{name}: expected two 2-D images of the same shape, got {reference.shape} and {distorted.shape}."
        )
    return reference, distorted


def psnr(reference, distorted, peak=255.0):
    """``10 log10(peak^2 / MSE)`` in dB; ``inf`` for identical images."""
    reference, distorted = _pair("psnr", reference, distorted)
    mse = np.mean((reference - distorted) ** 2)
    if mse == 0:
        return math.inf
    return float(10 * np.log10(peak**2 / mse))


def _gaussian_1d():
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D
    # kernel with itself (the exponential factorises; its tiny-value cutoff
    # eps * max never triggers at sigma 1.5).
    x = np.arange(_SSIM_WINDOW, dtype=np.float64) - (_SSIM_WINDOW - 1) / 2
    g = np.exp(-(x * x) / (2 * _SSIM_SIGMA**2))
    return g / g.sum()


def _filter_valid(maps, kernel):
    """``filter2(kernel' * kernel, map, 'valid')`` for a stack of maps ``[N, H, W]``."""
    size = kernel.shape[0]
    rows = np.lib.stride_tricks.sliding_window_view(maps, size, axis=1) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, size, axis=2) @ kernel


def ssim(reference, distorted, peak=255.0):
    """Mean SSIM (Wang et al. 2004 reference ``ssim_index``), valid region only."""
    reference, distorted = _pair("ssim", reference, distorted)
    if min(reference.shape) < _SSIM_WINDOW:
        raise ValueError(f"ssim: images must be at least {_SSIM_WINDOW}x{_SSIM_WINDOW}, got {reference.shape}.")
    c1 = (_SSIM_K1 * peak) ** 2
    c2 = (_SSIM_K2 * peak) ** 2
    stack = np.stack([reference, distorted, reference * reference, distorted * distorted, reference * distorted])
    mu1, mu2, e11, e22, e12 = _filter_valid(stack, _gaussian_1d())
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    # Population statistics: E[xy] - E[x] E[y] with the normalised window.
    sigma1_sq, sigma2_sq, sigma12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(np.mean(ssim_map))


# ----------------------------------------------------------------------------
# IFC
# ----------------------------------------------------------------------------


def _subband_geometry(index):
    """Pyramid level (pyrtools: 0 = finest), orientation and window size of a reference band index."""
    lev = math.ceil((index - 1) / 6)  # 1 = coarsest ... 4 = finest
    orientation = 6 * lev + 1 - index
    # The reference gives the *coarse* levels the small windows; keep it.
    return _IFC_LEVELS - lev, orientation, 2**lev + 1


def _oriented_bands(image):
    """The 8 used subbands of ``SteerablePyramidSpace(image, 4, order=5, 'reflect1')``.

    The same filtering steps as pyrtools' class (lo0 filter, then per level
    the oriented band filters and the 2x-decimating low-pass), computing only
    the orientations IFC reads: the unused high-pass residual and 4 of the 6
    orientations of each level would be two thirds of the cost.
    ``test_metrics`` checks the result against the pyrtools class.
    """
    filters = pyrtools.pyramids.filters.parse_filter(f"sp{_IFC_ORDER}_filters", normalize=False)
    size = int(np.sqrt(filters["bfilts"].shape[0]))
    wanted = {_subband_geometry(index)[:2]: index for index in _IFC_SUBBANDS}
    bands = {}
    low = pyrtools.corrDn(image, filters["lo0filt"], edge_type="reflect1")
    for level in range(_IFC_LEVELS):
        for orientation in range(_IFC_ORDER + 1):
            if (level, orientation) in wanted:
                band_filter = filters["bfilts"][:, orientation].reshape(size, size).T
                bands[wanted[level, orientation]] = pyrtools.corrDn(low, band_filter, edge_type="reflect1")
        low = pyrtools.corrDn(low, filters["lofilt"], edge_type="reflect1", step=(2, 2))
    return bands


def _gsm_reference_model(band):
    """``refparams_vecgsm``: the s^2 field over 3x3 blocks and the eigenvalues of Cu."""
    m = _IFC_M
    neighbourhoods = np.lib.stride_tricks.sliding_window_view(band, (m, m)).reshape(-1, m * m)
    centred = neighbourhoods - neighbourhoods.mean(axis=0)
    cu = centred.T @ centred / neighbourhoods.shape[0]
    h, w = band.shape[0] // m, band.shape[1] // m
    blocks = band.reshape(h, m, w, m).transpose(0, 2, 1, 3).reshape(-1, m * m)
    s2 = np.sum((blocks @ np.linalg.inv(cu)) * blocks, axis=1) / (m * m)
    return s2.reshape(h, w), np.linalg.eigvalsh(cu)


def _distortion_channel(reference, distorted, window):
    """``ifc_gsm_model``: gain g and noise variance vv of d = g c + v, at stride M."""
    box = np.ones((window, window))
    area = float(window * window)
    m = _IFC_M
    kwargs = dict(edge_type="reflect1", step=(m, m), start=(m // 2, m // 2))

    def window_sum(a, filt=box):
        return pyrtools.corrDn(a, filt, **kwargs)

    mean_x = window_sum(reference, box / area)
    mean_y = window_sum(distorted, box / area)
    cov_xy = window_sum(reference * distorted) - area * mean_x * mean_y
    ss_x = np.maximum(window_sum(reference * reference) - area * mean_x**2, 0)
    ss_y = np.maximum(window_sum(distorted * distorted) - area * mean_y**2, 0)
    g = cov_xy / (ss_x + _IFC_TOL)
    vv = (ss_y - g * cov_xy) / area
    flat_x = ss_x < _IFC_TOL
    g[flat_x] = 0
    vv[flat_x] = ss_y[flat_x]
    flat_y = ss_y < _IFC_TOL
    g[flat_y] = 0
    vv[flat_y] = 0
    negative = g < 0
    vv[negative] = ss_y[negative]
    g[negative] = 0
    return g, np.maximum(vv, _IFC_TOL)


def _min_ifc_size():
    # Each of the 4 levels halves the image; the coarsest still needs the 9x9
    # sp5 filters and the 3x3 GSM blocks to fit.
    return 9 * 2 ** (_IFC_LEVELS - 1)


def ifc(reference, distorted):
    """Information fidelity criterion (Sheikh, Bovik, de Veciana 2005), per pixel.

    Not symmetric: ``reference`` defines the GSM source model.
    """
    reference, distorted = _pair("ifc", reference, distorted)
    if min(reference.shape) < _min_ifc_size():
        raise ValueError(f"ifc: images must be at least {_min_ifc_size()} pixels on each side, got {reference.shape}.")
    m = _IFC_M
    ref_bands, dist_bands = _oriented_bands(reference), _oriented_bands(distorted)
    total = 0.0
    for index in _IFC_SUBBANDS:
        _, _, window = _subband_geometry(index)
        h, w = (np.array(ref_bands[index].shape) // m) * m
        c, d = ref_bands[index][:h, :w], dist_bands[index][:h, :w]
        s2, eigenvalues = _gsm_reference_model(c)
        g, vv = _distortion_channel(c, d, window)
        border = math.ceil(((window - 1) / 2) / m)
        inner = np.s_[border : g.shape[0] - border, border : g.shape[1] - border]
        signal = (g[inner] ** 2 * s2[inner] / (vv[inner] + _IFC_SIGMA_NSQ))[..., None]
        total += float(np.sum(np.log2(1 + signal * eigenvalues)))
    return total / reference.size
