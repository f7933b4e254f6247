"""Build mailgate: the Cython hot paths from pyx/ and the cffi OpenSSL module from include/.

Everything else (metadata, dependencies) lives in pyproject.toml.  Before any C is
compiled, the build checks that a C compiler, the Python headers and the OpenSSL 3
headers are present, and stops with the packages to install when one is missing.
"""

import os
import sys
import tempfile
import textwrap
from glob import glob

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

MISSING_HINT = textwrap.dedent(
    """
    mailgate: cannot build the compiled extensions: {what}.
    mailgate needs a C compiler, the Python headers and the OpenSSL 3 headers.
    On Debian or Ubuntu:  apt-get install build-essential python3-dev libssl-dev
    On Fedora or RHEL:    dnf install gcc python3-devel openssl-devel
    On Alpine:            apk add build-base python3-dev openssl-dev
    """
)

PROBE_SOURCE = textwrap.dedent(
    """
    #include <Python.h>
    #include <openssl/opensslv.h>
    #include <openssl/ssl.h>
    #if OPENSSL_VERSION_NUMBER < 0x30000000L
    #error "mailgate needs OpenSSL 3.0 or newer"
    #endif
    int mailgate_probe(void) { return SSL_CTX_get_options(NULL) == 0; }
    """
)


def _probe_toolchain(compiler, include_dirs):
    """Compile a one-line program that needs everything the real build needs."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "mailgate_probe.c")
        with open(source, "w") as f:
            f.write(PROBE_SOURCE)
        try:
            compiler.compile([source], output_dir=tmp, include_dirs=include_dirs)
        except Exception as exc:  # CompileError, or the compiler binary is missing
            detail = str(exc).strip().splitlines()
            what = "the test compilation failed"
            if detail:
                what += " (" + detail[-1] + ")"
            raise SystemExit(MISSING_HINT.format(what=what)) from None


class BuildExt(build_ext):
    """build_ext that checks the toolchain first and explains what is missing."""

    def build_extensions(self):
        import sysconfig

        include_dirs = [sysconfig.get_paths()["include"]] + list(self.include_dirs or [])
        _probe_toolchain(self.compiler, include_dirs)
        super().build_extensions()


def cython_extensions():
    """Every pyx/NAME.pyx becomes the module mailgate._speedups.NAME."""
    sources = sorted(glob(os.path.join("pyx", "*.pyx")))
    if not sources:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        raise SystemExit(MISSING_HINT.format(what="Cython is not installed (pip install cython)"))
    extensions = [
        Extension(
            "mailgate._speedups." + os.path.splitext(os.path.basename(src))[0],
            [src],
            include_dirs=["pyx", "include"],
        )
        for src in sources
    ]
    return cythonize(
        extensions,
        include_path=["pyx"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "embedsignature": True,
        },
    )


if __name__ == "__main__":
    os.chdir(HERE)
    setup(
        package_dir={"": "engine"},
        packages=find_packages(where="engine"),
        ext_modules=cython_extensions(),
        cffi_modules=["include/build_openssl.py:ffibuilder"],
        cmdclass={"build_ext": BuildExt},
        zip_safe=False,
    )
