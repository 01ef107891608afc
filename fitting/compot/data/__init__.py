"""Everything a fit is fitted to: DFT configurations, the priors, and their weights.

* :mod:`compot.data.configurations` — what a DFT configuration is and the checks it
  passes (:class:`Configuration`, :func:`validate_configuration`, :func:`resolve_keys`);
* :mod:`compot.data.readers` — reading configurations from files (ASE formats, MVL
  JSON): :func:`read_configurations`, :func:`read_dataset`;
* :mod:`compot.data.files` — where the data and peer potentials are, which files a
  folder stands for, the group of a file's configurations;
* :mod:`compot.data.split` — training/validation splits (random or by block);
* :mod:`compot.data.anchors` — the priors (``zbl_anchor``, ``eos_anchor``) as
  configurations with targets;
* :mod:`compot.data.weighted` — batches with targets and the row weights of the
  loss (paper Eq. 26), used by the trainer and the Fisher-information analysis.

The public names of the first four modules are importable from ``compot.data``.
"""

from .configurations import DATA_KEYS, Configuration, resolve_keys, validate_configuration
from .files import data_files, default_data_dir, default_peers_dir, file_group
from .readers import KBAR, read_configurations, read_dataset
from .split import train_validation_split

__all__ = ["Configuration", "default_data_dir", "default_peers_dir", "read_configurations", "read_dataset", "train_validation_split",
           "validate_configuration", "KBAR", "DATA_KEYS", "data_files", "file_group", "resolve_keys"]
