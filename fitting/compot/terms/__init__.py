"""Model terms, one class per term of the paper's notation (MODEL_SPEC §2–4).

* ``G<K>``, ``C<K>``: :class:`Linear` (:mod:`.pair`)
* ``E[G<K>L<L>]``: :class:`Exponentiated` (:mod:`.exponentiated`)
* ``N[E[G<K>L<L>]]``: :class:`NeighbourExponentiated` (:mod:`.exponentiated`)
* ``A[G<K>P<P>]``: :class:`Angular` (:mod:`.angular`)
* ``E[A[G<K>P<P>]L<L>]``: :class:`ExponentiatedAngular` (:mod:`.exp_angular`)
* ``ZBL(r_in, r_out)``: :class:`ZBL` (:mod:`.zbl`)
* ``X + Y``, ``X * Y``: :class:`Sum`, :class:`Product` (:mod:`.composite`)

The base class and the parameter-block record are in :mod:`.base`.
:data:`REGISTRY` holds every concrete term class by name.
"""

from .angular import Angular, AngularMoments, BoundedInvariants
from .base import REGISTRY, BasisSpec, ParameterBlock, Term, index_labels
from .composite import Product, Sum
from .exp_angular import ExponentiatedAngular
from .exponentiated import Exponentiated, NeighbourExponentiated
from .pair import Linear
from .zbl import ZBL

__all__ = ["Term", "BasisSpec", "ParameterBlock", "REGISTRY", "index_labels", "Linear", "Exponentiated",
           "NeighbourExponentiated", "Angular", "ExponentiatedAngular", "AngularMoments", "BoundedInvariants", "ZBL", "Sum", "Product"]
