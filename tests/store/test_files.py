"""Where uploaded files go: one folder per charge point, inside the data directory."""

from __future__ import annotations

from pathlib import Path

from adapters.store.file_store import FileStore


def test_charge_points_whose_names_differ_never_share_a_diagnostics_folder(tmp_path: Path) -> None:
    files = FileStore(tmp_path, max_size=1024)  # given identities that differ only in punctuation

    folders = {files.diagnostics_dir(name) for name in ("cp:1", "cp|1", "cp@1", ".cp_1", "cp_1")}  # when

    assert len(folders) == 5  # then


def test_a_charge_point_named_like_a_path_stays_inside_the_data_directory(tmp_path: Path) -> None:
    files = FileStore(tmp_path, max_size=1024)

    for name in ("..", ".", "..."):
        folder = files.diagnostics_dir(name)
        assert folder.parent == tmp_path / "diagnostics" and folder.name not in (".", "..")
