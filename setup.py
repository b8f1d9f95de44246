"""Builds the `bifrost._core` extension from the client-side C areas.

The extension compiles python/bifrost/_core*.c together with src/{util,arrow,schema,
rows,ipc,rpc,client,producer}/*.c (tests and fuzz targets excluded) and the
protobuf-c code that `protoc-c` generates from proto/ into the build directory at
build time (generated code is never committed). Compiler and linker flags for gRPC,
protobuf-c, jansson and libcrypto come from pkg-config. setuptools' own build tree
lives in build-py/setuptools so it never mixes with the CMake tree in build/.
Set BIFROST_WERROR=1 to turn compiler warnings into errors.
"""
import glob
import os
import shlex
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(ROOT, "build-py"), exist_ok=True)
C_AREAS = ["util", "arrow", "schema", "rows", "ipc", "rpc", "client", "producer"]
PROTOS = ["bifrost/v1/bifrost.proto", "grpc/health/v1/health.proto"]
PKG_CONFIG_PACKAGES = ["grpc", "gpr", "libprotobuf-c", "jansson", "libcrypto"]


def c_sources():
    sources = sorted(glob.glob(os.path.join("python", "bifrost", "_core*.c")))
    for area in C_AREAS:
        for path in sorted(glob.glob(os.path.join("src", area, "*.c"))):
            name = os.path.basename(path)
            if name.endswith("_test.c") or name.endswith("_fuzz.c") or name == "main.c":
                continue
            sources.append(path)
    return sources


def pkg_config(*flags):
    out = subprocess.run(
        ["pkg-config", *flags, *PKG_CONFIG_PACKAGES], check=True, capture_output=True, text=True
    ).stdout
    return shlex.split(out)


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        gen_dir = os.path.join(os.path.abspath(self.build_temp), "gen")
        os.makedirs(gen_dir, exist_ok=True)
        subprocess.run(
            ["protoc-c", "--proto_path=proto", f"--c_out={gen_dir}", *PROTOS],
            cwd=ROOT,
            check=True,
        )
        generated = [os.path.join(gen_dir, p[: -len(".proto")] + ".pb-c.c") for p in PROTOS]
        for ext in self.extensions:
            ext.sources = list(ext.sources) + generated
            ext.include_dirs = list(ext.include_dirs) + [gen_dir]
        super().build_extensions()


warnings = ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
            "-Werror=implicit-function-declaration"]  # always a bug: an undefined symbol at import
if os.environ.get("BIFROST_WERROR") == "1":
    warnings.append("-Werror")

core = Extension(
    "bifrost._core",
    sources=c_sources(),
    include_dirs=["include", "src"],
    extra_compile_args=["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE", "-O2", *warnings]
    + pkg_config("--cflags"),
    extra_link_args=pkg_config("--libs") + ["-lpthread", "-lm", "-ldl"],
)

setup(
    ext_modules=[core],
    cmdclass={"build_ext": BuildExt},
    options={"build": {"build_base": "build-py/setuptools"}, "egg_info": {"egg_base": "build-py"}},
)
