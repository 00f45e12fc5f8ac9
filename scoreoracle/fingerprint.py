"""Content fingerprints: a SHA-256 that changes whenever an object's content does and is stable
across processes (no memory addresses).  Arrays and tensors count by their bytes, modules by
their weights and every submodule's settings (and, for a user's own module classes, forward
code), functions by their code, names, constants, defaults (keyword-only too), closures and the
module-level values they read, other objects by their type and attributes.  Used to tell one run's setup (oracle, drift, options) from another's."""

from __future__ import annotations

import functools
import hashlib
import types

import numpy as np
import torch


SCHEME = 2
"""Version of the description rules: fingerprints made under different schemes are not comparable
(a run saved under another scheme cannot be matched; runs store the scheme beside the fingerprint)."""


def fingerprint(obj) -> str:
    """SHA-256 hex digest of ``obj``'s content."""
    return hashlib.sha256(describe(obj, set()).encode()).hexdigest()


def describe(obj, seen: set) -> str:
    """A canonical text of ``obj``'s content (``seen`` breaks reference cycles)."""
    if isinstance(obj, np.generic):  # before float: np.float64 is one, and its repr changed in numpy 2
        return repr(obj.item())
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return repr(obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:  # its bytes are pointers: describe the elements
        return f"ndarray{obj.shape}object:" + describe(obj.tolist(), seen)
    if isinstance(obj, np.ndarray):
        return f"ndarray{obj.shape}{obj.dtype}:" + hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        return f"tensor{tuple(obj.shape)}{t.dtype}:" + hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()
    if isinstance(obj, (torch.dtype, torch.device)):
        return str(obj)
    if isinstance(obj, (types.BuiltinFunctionType, type)):
        return f"{obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if id(obj) in seen:
        return f"<cycle {type(obj).__qualname__}>"
    seen = seen | {id(obj)}
    if isinstance(obj, (list, tuple)):
        return type(obj).__name__ + "(" + ",".join(describe(v, seen) for v in obj) + ")"
    if isinstance(obj, (set, frozenset)):
        return "set(" + ",".join(sorted(describe(v, seen) for v in obj)) + ")"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{describe(k, seen)}:{describe(obj[k], seen)}" for k in sorted(obj, key=repr)) + "}"
    if isinstance(obj, np.random.Generator):
        return "numpy generator" + describe(obj.bit_generator.state, seen)
    if isinstance(obj, torch.Generator):
        return "torch generator" + describe(obj.get_state(), seen)
    if isinstance(obj, torch.nn.Module):  # weights, each submodule's public attributes and computation
        public = {name: (_forward(m), {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"})
                  for name, m in obj.named_modules()}
        return f"module {type(obj).__qualname__}" + describe((dict(obj.state_dict()), public), seen)
    if isinstance(obj, functools.partial):
        return "partial" + describe((obj.func, obj.args, obj.keywords), seen)
    if isinstance(obj, types.MethodType):  # a bound method: its function and its object
        return "method" + describe((obj.__func__, obj.__self__), seen)
    if isinstance(obj, types.CodeType):  # the code of a nested function, lambda or comprehension
        return f"code {obj.co_qualname}:" + obj.co_code.hex() + describe((obj.co_consts, obj.co_names), seen)
    code = getattr(obj, "__code__", None)
    if code is not None:  # functions and lambdas
        cells = []
        for cell in getattr(obj, "__closure__", None) or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # an empty cell
                cells.append(None)
        module_globals = getattr(obj, "__globals__", {})
        used = {name: _global(module_globals[name], seen) for name in _names_read(code) if name in module_globals}
        return (f"function {getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}:" + code.co_code.hex()
                + describe((code.co_consts, code.co_names, getattr(obj, "__defaults__", None),
                                   getattr(obj, "__kwdefaults__", None), cells, used), seen))
    state = getattr(obj, "__dict__", None)
    if state is None:  # no attribute dictionary: describe how the object pickles
        try:
            return f"{type(obj).__module__}.{type(obj).__qualname__}" + describe(obj.__reduce_ex__(4)[1:], seen)
        except (TypeError, AttributeError) as exc:
            raise TypeError(f"cannot fingerprint a {type(obj).__qualname__}; give it a fingerprint() method") from exc
    call = getattr(type(obj), "__call__", None)
    parts = {"__call__": call} if call is not None and hasattr(call, "__code__") else {}
    parts.update(state)
    return f"{type(obj).__module__}.{type(obj).__qualname__}" + describe(parts, seen)


def _forward(module: torch.nn.Module):
    """What identifies a module's computation: its class's forward code for a user's module, the
    class name for torch's and this library's (whose code changes between versions, not between runs)."""
    cls = type(module)
    if cls.__module__.split(".")[0] in ("torch", "scoreoracle"):
        return f"{cls.__module__}.{cls.__qualname__}"
    return cls.forward


def _names_read(code: types.CodeType) -> list:
    """The global and attribute names a code object reads, its nested code objects' included, sorted."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(_names_read(const))
    return sorted(names)


def _global(value, seen: set) -> str:
    """A module-level value a function reads (its content when it can be described, else its type):
    the same code reading a changed global is a different function."""
    try:
        return describe(value, seen)
    except TypeError:
        return f"<{type(value).__qualname__}>"
