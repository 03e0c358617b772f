"""The examples' --dir given empty: refused at once by the example's command line (exit 2, one line naming the flag).

Before: example 01 ended in a ValueError traceback from Campaign; example 03 ran a whole campaign in its default
time-stamped directory, as if --dir had not been given.
"""

from __future__ import annotations

import pytest

from .test_fuzz_examples import AL, DESIGN, refused

pytest.importorskip("rdkit")


@pytest.mark.parametrize("script", [AL, DESIGN], ids=["01", "03"])
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_dir_is_refused_at_once(tmp_path, script, value):
    assert "--dir: " in refused(script, tmp_path, "--dir", value) and "is empty" in refused(script, tmp_path,
                                                                                             f"--dir={value}")
