"""One place that sets the numba options for every kernel in pymitml.

Kernels are compiled with ``cache=True`` (compiled code is reused across processes) and
``fastmath=False`` (results must not depend on reassociation; identical seeds must give
identical draws on every machine).

Compile time (issue 12). numba turns every function it compiles into a library of its own and
makes that library ready to run: the library's module, with the modules of all its callees
linked in, is optimised as a whole (LLVM's module pipeline) and translated to machine code. A
caller then links the already-optimised callees into its own module and does it all again, so
the code of a helper three calls deep is optimised and translated four times, while only the
entry point's machine code (which contains its callees) ever runs.

:func:`njit` therefore compiles a function *for its jitted callers* through a pipeline whose
library is never finalised on its own: it holds the function's code after numba's per-function
passes, and its callers link that code (with its callees', recursively) and optimise and
translate everything once, as one module. The optimisation level, the passes and the
floating-point semantics are unchanged (no fast-math flags; the draws are bit-identical); only
the repetition goes. A call from Python goes to an ordinary numba dispatcher of the same
function (its "twin", created on first use, ``cache=True``), which is how the samplers' kernels
are entered. Callee compilations are not cached on disk, and need not be: a warm start loads the
entry point's machine code, which contains its callees. The entry point's own code (the kernel's
glue and its Python wrapper) may be compiled for size (``njit(glue=True)``, :class:`_EntryLibrary`).

Reference counting (issue 12). numba counts references to every array a function holds, and a
bundle (a NamedTuple of arrays) is counted array by array: each copy of a bundle variable, each
bundle argument, each early return writes an increment or decrement per member array, most of
them removed again by LLVM. In a sampler's kernel, which takes eight bundles of up to 35 arrays,
this bookkeeping was more than half of the code numba generated. Kernels that only read and write
buffers their caller allocated (no array allocated, none returned or stored) are therefore
compiled with ``njit(nrt=False)``: numba's runtime off, no reference counts at all. The arithmetic
is untouched (bit-identical draws); a function that does allocate fails to compile with
``nrt=False`` (numba requires its runtime for that), so the option cannot be misapplied silently.
A function compiled without the runtime may call one compiled with it (whose own allocations
stay balanced) and be called by one; the flag is always set explicitly, since numba otherwise
inherits it from the caller that happens to compile a function first.

This relies on numba internals (``JITCodeLibrary``, ``NativeLowering`` with its ``no_compile``
flag, as used by numba's own ``compile_subroutine``; checked with numba 0.68); with
``PYMITML_PLAIN_NJIT=1`` every function is an ordinary ``numba.njit`` function instead.
"""

from __future__ import annotations

import os
import threading

import numba
from llvmlite import binding as ll
from numba.core import compiler, registry
from numba.core.codegen import JITCodeLibrary
from numba.core.compiler_machinery import register_pass
from numba.core.typed_passes import NativeLowering

#: keyword arguments for :func:`numba.njit` used by every pymitml kernel
NJIT_OPTIONS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

#: plain ``numba.njit`` everywhere (environment variable ``PYMITML_PLAIN_NJIT``, read at import)
PLAIN = os.environ.get("PYMITML_PLAIN_NJIT", "") not in ("", "0")

#: the compile-for-callers machinery below uses numba internals checked on 0.68 only; any other
#: numba (pyproject allows >=0.59,<0.69) gets plain ``numba.njit``: slower first calls, same results
LINKED_CALLEES = numba.__version__.startswith("0.68.")


class _CalleeLibrary(JITCodeLibrary):
    """The code library of a function compiled only to be linked into its jitted callers: never
    optimised as a module nor turned into machine code by itself (see the module docstring)."""

    def _ensure_finalized(self):
        # linking into a caller does not need this library finalised (see _get_module_for_linking)
        pass

    def add_linking_library(self, library):
        library._ensure_finalized()
        self._linking_libraries.append(library)
        self._reload_init.update(library._reload_init)

    def _get_module_for_linking(self):
        """This function's code, with that of everything it calls linked in; its functions made
        ``linkonce_odr`` so that several callers (and callees shared by several of them) merge."""
        if self._shared_module is None:
            mod = self._final_module.clone()
            seen = set()
            for library in self._linking_libraries:
                if library not in seen:
                    seen.add(library)
                    mod.link_in(library._get_module_for_linking(), preserve=True)
            for fn in mod.functions:
                if not fn.is_declaration and fn.linkage == ll.Linkage.external:
                    fn.linkage = "linkonce_odr"
            self._shared_module = mod
        return self._shared_module


@register_pass(mutates_CFG=True, analysis_only=False)
class _CalleeLowering(NativeLowering):
    """numba's lowering without the final step that makes the library executable: the function is
    registered for its jitted callers, which link its library."""

    _name = "pymitml_callee_lowering"

    def run_pass(self, state):
        from numba import _dynfunc
        from numba.core.compiler import _LowerResult

        flags = state.flags
        saved = flags.no_compile
        flags.no_compile = True
        try:
            super().run_pass(state)
        finally:
            flags.no_compile = saved
        res = state["cr"]
        fndesc, library = res.fndesc, state.library
        # no entry point callable from Python (as numba's own no_cpython_wrapper functions); the
        # dispatcher never calls it (calls from Python go to the twin)
        cfunc = _dynfunc.make_function(
            fndesc.lookup_module(),
            fndesc.qualname.split(".")[-1],
            f"callee-only {fndesc.qualname!r}",
            0,
            res.env,
            (library,),
        )
        state.targetctx.insert_user_function(cfunc, fndesc, [library])
        state.reload_init.extend(library._reload_init)
        state["cr"] = _LowerResult(fndesc, res.call_helper, cfunc=cfunc, env=res.env)
        return True


class _CalleeCompiler(compiler.CompilerBase):
    """numba's nopython pipeline with a :class:`_CalleeLibrary` and :class:`_CalleeLowering`."""

    def _compile_core(self):
        if self.state.library is None:
            self.state.library = _CalleeLibrary(
                self.state.targetctx.codegen(), self.state.func_id.func_qualname
            )
        return super()._compile_core()

    def define_pipelines(self):
        pm = compiler.DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.passes = [
            (_CalleeLowering, desc) if cls is NativeLowering else (cls, desc)
            for cls, desc in pm.passes
        ]
        pm.finalize()
        return [pm]


class _EntryLibrary(JITCodeLibrary):
    """The code library of a kernel's entry point (the twin called from Python).

    Its own functions are the kernel's body (glue: the calls of its steps, where the hot loops
    are) and the wrapper that unboxes the bundles passed from Python (run once per call). They are
    not given numba's per-function passes before linking (the whole-module optimisation that
    follows runs the same passes on everything), and the wrapper is marked ``optsize`` (less
    unrolling, less code); the steps linked in are optimised as before. Neither changes the
    arithmetic (no fast-math flags), only compile time (jomo's entry point: about 0.6 s)."""

    def _optimize_functions(self, ll_module):
        ll_module.data_layout = self._codegen._data_layout
        for fn in ll_module.functions:
            if not fn.is_declaration and fn.name.startswith("_ZN7cpython"):
                fn.add_function_attribute("optsize")


class _EntryCompiler(compiler.Compiler):
    """numba's pipeline with an :class:`_EntryLibrary`."""

    def _compile_core(self):
        if self.state.library is None:
            self.state.library = _EntryLibrary(
                self.state.targetctx.codegen(), self.state.func_id.func_qualname
            )
            self.state.library.enable_object_caching()  # as numba's lowering does (cache=True)
        return super()._compile_core()


class _KernelDispatcher(registry.CPUDispatcher):
    """Compiles for jitted callers through :class:`_CalleeCompiler`; a call from Python goes to an
    ordinary numba dispatcher of the same function (its twin, created on first use)."""

    def __init__(self, py_func, twin_options, glue=False, **kwargs):
        super().__init__(py_func, pipeline_class=_CalleeCompiler, **kwargs)
        self._twin_options = twin_options
        self._twin_pipeline = {"pipeline_class": _EntryCompiler} if glue else {}
        self._twin = None

    def __call__(self, *args, **kwargs):
        twin = self._twin
        if twin is None:
            with _TWIN_LOCK:  # chains may enter a kernel from several threads at once
                if self._twin is None:
                    self._twin = numba.njit(**self._twin_pipeline, **self._twin_options)(
                        self.py_func
                    )
                twin = self._twin
        return twin(*args, **kwargs)


_TWIN_LOCK = threading.Lock()


def _callee_options(opts):
    """Target options of the compilation for jitted callers: no wrappers, no cache."""
    out = {k: v for k, v in opts.items() if k != "cache"}
    out.update(no_cpython_wrapper=True, no_cfunc_wrapper=True)
    return out


def _twin_options(opts):
    """Options of the dispatcher that serves calls from Python: numba's, with the CPython wrapper
    (whatever ``opts`` say) and without the C-callback wrapper (pymitml exports no cfuncs)."""
    out = dict(opts)
    out.update(no_cpython_wrapper=False, no_cfunc_wrapper=True)
    return out


def njit(*args, nrt=True, glue=False, **kwargs):
    """``numba.njit`` with pymitml's options (extra keyword arguments override them): compiled
    once for jitted callers and, on a call from Python, as an ordinary numba function (see the
    module docstring). ``nrt=False``: without numba's runtime (no reference counting), for
    functions that work only in buffers their caller allocated. With ``PYMITML_PLAIN_NJIT=1`` in
    the environment at import, simply ``numba.njit`` (to compare compile times). ``glue=True``:
    a kernel entered from Python whose own code only calls its steps (all hot loops in them): its
    entry point is compiled for size (see :class:`_EntryLibrary`)."""
    opts = dict(NJIT_OPTIONS)
    opts.update(kwargs)
    # always explicit: numba would otherwise inherit the runtime flag from the first caller
    opts["_nrt"] = bool(nrt)

    def wrap(func):
        if PLAIN or not LINKED_CALLEES or numba.config.DISABLE_JIT:
            return numba.njit(**opts)(func)
        return _KernelDispatcher(
            func, _twin_options(opts), glue, locals={}, targetoptions=_callee_options(opts)
        )

    if args and callable(args[0]) and len(args) == 1:
        return wrap(args[0])
    if args:
        raise TypeError("pymitml's njit takes keyword options only")
    return wrap
