"""A synthetic dataset that looks to the rest of the workflow exactly like EMBED.

It writes real DICOM files (pydicom; JPEG 2000 lossless for one vendor, as in
EMBED), EMBED's folder layout and id formats, and the two EMBED tables with their
column names, including the rows the study's filters must remove (men, density 5,
spot/magnification views, C-view and ROI images, exaggerated views, a fourth
vendor, patients with two density values).

Image content is a simple breast phantom:
- density: the fibroglandular (bright) share of the breast is the patient's latent
  dense fraction, drawn per BI-RADS class around ordinal centres, so A < B < C < D
  with B and C overlapping by a configurable spread;
- vendor: each vendor has its own transfer curve, heel-effect gradient, detector
  stripes, blur and noise, strong enough that a CNN tells vendors apart (the
  study's separable subgroups) while leaving the dense area equally readable;
- demographics: the fat-tissue level moves with ``demographic_signal`` per race
  group against patient-level noise, so separability is a tunable continuum.

Everything is drawn from one seed: the plan is sampled first, and each image is
rendered from its own seed, so parallel rendering gives identical files.

The package is three steps, each a module: ``plan`` samples the patients, exams and
images and writes the EMBED tables' rows; ``render`` draws one image's pixels from its
own seed; ``dicom`` writes it as a DICOM file.
"""

from .dicom import default_workers, write_dicom, write_images
from .plan import (
    DENSITY_CLASSES,
    MAIN_VENDORS,
    OTHER_VENDOR,
    RACE_SHIFT,
    VENDOR_LOOKS,
    ImageJob,
    SyntheticSettings,
    VendorLook,
    oracle_summary,
    plan_dataset,
    settings_from_config,
)
from .render import add_hard_features, render_display

__all__ = [
    "DENSITY_CLASSES",
    "MAIN_VENDORS",
    "OTHER_VENDOR",
    "RACE_SHIFT",
    "VENDOR_LOOKS",
    "ImageJob",
    "SyntheticSettings",
    "VendorLook",
    "add_hard_features",
    "default_workers",
    "oracle_summary",
    "plan_dataset",
    "render_display",
    "settings_from_config",
    "write_dicom",
    "write_images",
]
