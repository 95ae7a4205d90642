"""The one registry of fitted-model classes that the pooling functions understand.

For each model class the registry holds a :class:`ModelAdapter`: how to read the estimates and
their covariance matrix (mitml's ``.getCoef`` / ``.getVcov``: everything Rubin's rules, D1, D2 on
Wald statistics and the constraint tests need), optionally the extra parameters pooled with
``extra_pars=True`` (``.getMisc``) and optionally the likelihood methods of D2 (likelihood), D3,
D4 and anova. Lookup is :func:`functools.singledispatch` on the fit's class, so subclasses inherit
their parent's adapter.

A user teaches pymitml a new class with :func:`register_model`::

    pm.register_model(MyFit, lambda fit: (fit.coef_series, fit.vcov_frame))


    @pm.register_model(MyOtherFit)
    def _(fit):
        return pd.Series(fit.b, index=fit.names), pd.DataFrame(fit.V, fit.names, fit.names)

A class can also be named by the string ``"module:QualName"``: the entry is registered when
that module has been imported, so registering never imports a model library. pymitml registers
its own ``LmerFit`` and statsmodels' results classes this way (see :mod:`._builtin`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import singledispatch
from typing import Any

__all__ = ["ModelAdapter", "adapter_for", "register_model"]


@dataclass(frozen=True)
class ModelAdapter:
    """What the pooling functions read from a fit of one model class.

    Attributes
    ----------
    estimates : ``fit -> (coef, vcov)``; coef anything 1-D (a named ``pandas.Series`` gives the
        parameter names, otherwise they are ``Parameter.1, ...``), vcov (k, k) or (k,) variances.
    variance_components : ``fit -> pandas.Series | None``, the extra parameters of
        ``pool_estimates(..., extra_pars=True)``; None: the class has none (mitml's warning).
    likelihood : ``fit -> adapter | None``, an object with the likelihood methods listed in
        :mod:`pymitml.pool._likelihood` (``loglik``, ``ml_fit``, ``stacked_loglik``, ...); None:
        only the Wald-type methods (D1, D2 with ``use="wald"``) are available.
    """

    estimates: Callable[[Any], Any]
    variance_components: Callable[[Any], Any] | None = None
    likelihood: Callable[[Any], Any] | None = None


@singledispatch
def _lookup(fit: Any) -> ModelAdapter | None:
    return None


#: "module:QualName" -> adapter, moved into ``_lookup`` once the module is imported
_PENDING: dict[str, ModelAdapter] = {}
#: adapters tried in order for classes nobody registered (structural protocols, e.g. lme4-like
#: objects with ``fixef``, ``vcov`` and ``varcorr``): (test, adapter)
_PROTOCOLS: list[tuple[Callable[[Any], bool], ModelAdapter]] = []


def _resolve(key: str) -> type | None:
    module_name, _, qualname = key.partition(":")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) else None


def _resolve_pending() -> None:
    for key in list(_PENDING):
        cls = _resolve(key)
        if cls is not None:
            _store(cls, _PENDING.pop(key))


def _store(cls: type, adapter: ModelAdapter) -> None:
    _lookup.register(cls, lambda fit, _adapter=adapter: _adapter)


def register_model(
    cls: type | str,
    estimates: Callable[[Any], Any] | None = None,
    *,
    variance_components: Callable[[Any], Any] | None = None,
    likelihood: Callable[[Any], Any] | None = None,
) -> Any:
    """Teach the pooling functions a fitted-model class.

    Parameters
    ----------
    cls : the class (its subclasses are covered too), or ``"module:QualName"`` to register it
        once ``module`` is imported, without importing it now.
    estimates : ``fit -> (coef, vcov)``: the estimates (a named ``pandas.Series``, a dict or a
        1-D array) and their covariance matrix (k, k) (or k variances). Omitted: ``register_model``
        returns a decorator for this function.
    variance_components : optional ``fit -> pandas.Series`` of extra parameters pooled by
        ``pool_estimates(..., extra_pars=True)`` (variance components, residual variance).
    likelihood : optional ``fit -> adapter`` for the likelihood-based tests (advanced; see
        :mod:`pymitml.pool._likelihood` for the methods an adapter has).

    Returns
    -------
    ``estimates`` (so the decorator form leaves the function usable), or the decorator.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pymitml as pm
    >>> class MyFit:
    ...     def __init__(self, b, v):
    ...         self.b, self.v = b, v
    >>> _ = pm.register_model(MyFit, lambda f: (pd.Series(f.b, index=["a", "b"]), f.v))
    >>> fits = [MyFit([1.0, 2.0], np.eye(2)), MyFit([1.2, 1.8], np.eye(2))]
    >>> round(float(pm.pool_estimates(fits).table.loc["a", "Estimate"]), 6)
    1.1
    """
    if estimates is None:

        def decorator(func: Callable[[Any], Any]) -> Callable[[Any], Any]:
            register_model(
                cls, func, variance_components=variance_components, likelihood=likelihood
            )
            return func

        return decorator
    for name, func in (
        ("estimates", estimates),
        ("variance_components", variance_components),
        ("likelihood", likelihood),
    ):
        if func is not None and not callable(func):
            raise TypeError(f"`{name}` must be a function of the fit; got {type(func).__name__}.")
    adapter = ModelAdapter(estimates, variance_components, likelihood)
    if isinstance(cls, str):
        if ":" not in cls or not all(cls.partition(":")[::2]):
            raise ValueError(f"a class named by a string must be 'module:QualName'; got {cls!r}.")
        _PENDING[cls] = adapter
        _resolve_pending()
    elif isinstance(cls, type):
        _PENDING.pop(f"{cls.__module__}:{cls.__qualname__}", None)
        _store(cls, adapter)
    else:
        raise TypeError(
            f"`cls` must be a class or a 'module:QualName' string; got {type(cls).__name__}."
        )
    return estimates


def update_model(cls: type, **fields: Any) -> None:
    """Replace some functions of the adapter registered for exactly ``cls`` (others kept)."""
    current = _lookup.registry.get(cls)
    base = current(None) if current is not None else None
    if base is None:
        raise TypeError(
            f"no estimates are registered for class '{cls.__name__}'; call "
            "pymitml.register_model(cls, estimates) first."
        )
    _store(cls, replace(base, **fields))


def register_protocol(test: Callable[[Any], bool], adapter: ModelAdapter) -> None:
    """An adapter for unregistered objects that pass ``test`` (duck typing, tried in order)."""
    _PROTOCOLS.append((test, adapter))


def adapter_for(fit: Any) -> ModelAdapter | None:
    """The adapter of ``fit``'s class (registered, or by protocol), None if there is none."""
    if _PENDING:
        _resolve_pending()
    adapter = _lookup(fit)
    if adapter is not None:
        return adapter
    for test, candidate in _PROTOCOLS:
        if test(fit):
            return candidate
    return None
