"""The Data page's MNIST corner: which folder to read it from (a free-text folder on this
computer, or, served to a class, only the folders the server offers), and what to do when
it is not there yet (the download, with progress, or the folder to drop the files into)."""

from __future__ import annotations

import streamlit as st

from digits_core.config import DataConfig
from digits_core.data.mnist import MNIST_FILES, fetch_mnist, mnist_available, mnist_home
from digits_core.errors import DigitLabError
from digits_core.serve.serving import (
    allowed_data_folders,
    check_data_folder,
    display_path,
    served_publicly,
)


def mnist_folder_input(cfg: DataConfig) -> str | None:
    """The MNIST folder the person chooses (None: the download cache)."""
    if served_publicly():  # no free-text server paths for a class: the folders offered
        offered = [display_path(f) for f in allowed_data_folders()]
        current = display_path(cfg.mnist_dir) if cfg.mnist_dir else offered[-1]
        chosen = st.selectbox("MNIST folder", offered, index=offered.index(current) if current in offered
                              else len(offered) - 1, key="data_mnist_choice")
        return str(check_data_folder(chosen))
    custom = st.text_input(
        "Custom MNIST folder (optional)", value=cfg.mnist_dir or "", key="data_mnist_dir",
        help="A folder on this computer that holds the four MNIST files, gzipped or not.",
    ).strip()
    return custom or None


def mnist_here(mnist_dir: str | None) -> bool:
    """True when MNIST can be read; else say why and offer the download. False: stop the page."""
    ok, message = mnist_available(mnist_dir)
    if mnist_dir and not ok:
        st.error(message if not served_publicly() else f"MNIST is not complete in {display_path(mnist_dir)}.")
    if ok:
        return True
    cache = mnist_home() / "mnist"
    st.warning("MNIST is not on this machine yet, so it cannot be used until you get it.")
    st.markdown(
        "Either download it (about 11 MB, checked against the original checksums), or put "
        f"these four files, gzipped or not, into the folder below: "
        f"{', '.join(f'`{name}`' for name, _, _ in MNIST_FILES.values())}."
    )
    st.code(display_path(cache), language=None)
    if st.button("Download MNIST", key="data_download", type="primary"):
        bar = st.progress(0.0, text="Connecting…")
        total = sum(size for _, size, _ in MNIST_FILES.values())
        done_by_file: dict[str, int] = {}

        def report(name: str, done: int, size: int) -> None:
            done_by_file[name] = done
            got = sum(done_by_file.values())
            bar.progress(min(got / total, 1.0), text=f"{name}: {got / 2**20:.1f} of {total / 2**20:.1f} MB")

        try:
            fetch_mnist(progress=report)
        except DigitLabError as e:
            st.error(str(e))
        else:
            st.success(f"MNIST downloaded into {display_path(cache)}.")
            st.rerun()
    return False


__all__ = ["mnist_folder_input", "mnist_here"]
