"""One driver per directory, even when DIR/driver.lock is deleted; directory and file permissions respected."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import warnings

import pytest

from steerflow import Allocation, Campaign, CampaignLocked, Executable, checkpoint, dirlock

ALLOC = Allocation.declare(nodes=1, cores=1)


def test_deleting_driver_lock_does_not_let_a_second_driver_in(tmp_path):
    directory = tmp_path / "c"
    with Campaign(directory, allocation=ALLOC, progress=False):
        os.unlink(directory / "driver.lock")
        with pytest.raises(CampaignLocked):
            Campaign(directory, allocation=ALLOC, progress=False, resume=True)
        assert dirlock.holder(directory) is not None
    # and once the first driver is gone, the directory is free again
    with Campaign(directory, allocation=ALLOC, progress=False, resume=True):
        pass
    assert dirlock.holder(directory) is None


def test_a_second_driver_process_is_refused_after_the_lock_file_is_deleted(tmp_path):
    directory = tmp_path / "c"
    code = ("import sys; from steerflow import Allocation, Campaign, CampaignLocked\n"
            "try:\n    Campaign(sys.argv[1], allocation=Allocation.declare(nodes=1, cores=1), progress=False, "
            "resume=True)\nexcept CampaignLocked:\n    sys.exit(3)\n")
    with Campaign(directory, allocation=ALLOC, progress=False):
        os.unlink(directory / "driver.lock")
        proc = subprocess.run([sys.executable, "-c", code, str(directory)], timeout=120)
        assert proc.returncode == 3


def test_a_new_directory_is_private(tmp_path):
    old = os.umask(0)
    try:
        with Campaign(tmp_path / "new", allocation=ALLOC, progress=False):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_an_existing_group_shared_directory_keeps_its_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o2770)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not world-readable: no warning either
        with Campaign(shared, allocation=ALLOC, progress=False):
            pass
    assert stat.S_IMODE(shared.stat().st_mode) == 0o2770


def test_a_world_readable_directory_is_kept_with_a_warning(tmp_path):
    public = tmp_path / "public"
    public.mkdir()
    os.chmod(public, 0o755)
    with pytest.warns(UserWarning, match="readable by every user"):
        with Campaign(public, allocation=ALLOC, progress=False):
            pass
    assert stat.S_IMODE(public.stat().st_mode) == 0o755


def test_task_output_files_are_private(runtime):
    result = runtime.submit(Executable(["echo", "hi"])).result(timeout=60)
    for path in (result.stdout_path, result.stderr_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def save_checkpoint() -> str:
    checkpoint.save({"i": 1})
    return checkpoint.path()


def test_checkpoints_are_private(runtime):
    from steerflow import Function

    path = runtime.submit(Function(save_checkpoint)).result(timeout=60)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
