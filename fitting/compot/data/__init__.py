"""Everything a fit is fitted to: DFT configurations, the priors, and their weights.

* :mod:`compot.data.configurations` — reading, validating and splitting DFT
  configurations (:class:`Configuration`, :func:`read_dataset`, …);
* :mod:`compot.data.split` — training/validation splits (random or by block);
* :mod:`compot.data.anchors` — the priors (``zbl_anchor``, ``eos_anchor``) as
  configurations with targets;
* :mod:`compot.data.weighted` — batches with targets and the row weights of the
  loss (paper Eq. 26), used by the trainer and the Fisher-information analysis.

The names of :mod:`compot.data.configurations` are importable from
``compot.data`` as well.
"""

from .configurations import (DATA_KEYS, KBAR, Configuration, data_files, default_data_dir, default_peers_dir,
                             file_group, read_configurations, read_dataset, resolve_keys, validate_configuration)
from .split import train_validation_split

__all__ = ["Configuration", "default_data_dir", "default_peers_dir", "read_configurations", "read_dataset", "train_validation_split",
           "validate_configuration", "KBAR", "DATA_KEYS", "data_files", "file_group", "resolve_keys"]
