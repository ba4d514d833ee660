from __future__ import annotations

import pytest
from traitlets import TraitError

from jupyter_dataops.settings import DataOps


@pytest.mark.parametrize("trait", ["live_preload", "kernel_preload"])
def test_preloaded_modules_must_be_module_names(trait):
    s = DataOps()
    setattr(s, trait, ["pandas", "matplotlib.pyplot"])
    with pytest.raises(TraitError, match=rf"DataOps.{trait}: .*'\[\"pandas\"' is not a module"):
        setattr(s, trait, ['["pandas"'])  # a list typed as one string on a command line
    assert getattr(s, trait) == ["pandas", "matplotlib.pyplot"]
