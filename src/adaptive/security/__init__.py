"""Test security from the data the service records: response patterns, chosen options and response times.

* :class:`~adaptive.answers.Records` -- long-format answer records (from the service export, a matrix or a
  simulation); no persons × items matrix is ever built.
* :mod:`~adaptive.security.response_times` -- van der Linden's lognormal response-time model (MML-EM on sparse
  data) and the ``l_t`` person-fit statistic of times.
* :mod:`~adaptive.security.person_fit` -- lz and Snijders' lz* for dichotomous and polytomous items.
* :mod:`~adaptive.security.rapid` -- rapid-guessing thresholds, response-time effort, the effect on θ̂.
* :mod:`~adaptive.security.preknowledge` -- signed likelihood-ratio statistics for a suspected leaked set, and
  an item scan for items that got easier and faster after a date.
* :mod:`~adaptive.security.similarity` -- identical wrong answers of candidate pairs at the same site and window.
* :mod:`~adaptive.security.report` -- all of it for one testing window, as typed results and an HTML report.
"""

from ..answers import Records, parse_item_ids, read_item_ids, read_records
from .person_fit import PersonFitResult, person_fit
from .preknowledge import ItemScan, PreknowledgeResult, item_scan, preknowledge, suspected_items
from .rapid import RapidGuessing, mixture_thresholds, normative_thresholds, rapid_guessing
from .response_times import ResponseTimeFit, SpeedFit, ability_speed_correlation, fit_response_times, speed_fit
from .similarity import SimilarityResult, answer_similarity, poisson_binomial_sf

__all__ = ["Records", "read_records", "read_item_ids", "parse_item_ids", "ResponseTimeFit", "SpeedFit",
           "fit_response_times", "speed_fit", "ability_speed_correlation",
           "PersonFitResult", "person_fit", "RapidGuessing", "normative_thresholds", "mixture_thresholds",
           "rapid_guessing", "PreknowledgeResult", "preknowledge", "ItemScan", "item_scan", "suspected_items",
           "SimilarityResult", "answer_similarity", "poisson_binomial_sf"]
