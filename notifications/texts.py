"""The catalogue of texts the customer receives by SMS and email: one template per event.

A message is stored as a template key and its parameters, and rendered in the customer's
language when it is queued (the SMS row keeps the body as sent, beside the key and parameters).

- The sender's signature (``SMS_SIGNATURE``, 【云账单】) starts every SMS to a China-mainland
  number (+86), whatever its language: mainland carriers drop a message without it. Other
  numbers get ``SMS_SIGNATURE_INTERNATIONAL`` ("[Cloud Billing]"), in the GSM alphabet, so a
  plain English text keeps its 160 characters. The signature counts in the segment's length.
- A parameter is a value, or a value per language (``{"en": ..., "zh-hans": ...}``) for words
  the system or a list supplies (a listed rejection reason, the missing parts of a paper).
- Text a person typed (a rejection reason) is the template's ``free`` parameter, never
  spliced in bare: whitespace folded, quoted (「…」 in Chinese; “…” in an English email, plain
  "…" in an English SMS to stay in the GSM alphabet); in an SMS limited to ``FREE_TEXT_MAX``
  characters and shortened further ("...") to fit one segment when that keeps at least
  ``FREE_TEXT_KEPT`` characters of it, otherwise the SMS takes a second segment rather than
  lose what the person said. An email carries it whole.
- ``then`` is the template's closing instruction; it is left out when the free text already
  says it, so a phrase is never doubled ("请重新上传。请重新上传。").
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from notifications.models import SmsPurpose
from notifications.segments import ELLIPSIS, fits_one_segment

Param = str | int | Mapping[str, str]
Params = Mapping[str, Param]

FREE_TEXT_MAX = 120  # characters of a typed text an SMS or email carries at most
FREE_TEXT_KEPT = 12  # shortened to fit one segment only if this much of it is kept

MAINLAND_PREFIX = "+86"


@dataclass(frozen=True)
class Template:
    purpose: str
    text: str  # the English wording (the msgid), with %(name)s parameters
    free: str = ""  # the parameter a person typed, if any
    then: str = ""  # a closing sentence, left out when the free text already says it


TEMPLATES: dict[str, Template] = {
    "return_received": Template(
        SmsPurpose.RETURN_RECEIVED,
        gettext_noop("We have received the paper invoice %(number)s you returned."),
    ),
    "return_rejected_note": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop("Your return of invoice %(number)s was rejected: %(note)s."),
        free="note",
        then=gettext_noop("You may return it again."),
    ),
    "return_rejected_reason": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop("Your return of invoice %(number)s was rejected: %(reason)s"),
    ),
    "return_rejected_reason_note": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop("Your return of invoice %(number)s was rejected: %(reason)s %(note)s."),
        free="note",
    ),
    "return_rejected_paper_incomplete": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop(
            "Your return of invoice %(number)s was rejected: the paper is missing %(parts)s. "
            "You may return it again."
        ),
    ),
    "return_rejected_form": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop(
            "Your return of invoice %(number)s was rejected for its red-letter form: %(note)s."
        ),
        free="note",
        then=gettext_noop("You may return it again."),
    ),
    "return_rejected_buyer_refused": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop(
            "Return of invoice %(number)s closed: the buyer refused red-letter form %(form)s. "
            "The invoice stays valid."
        ),
    ),
    "return_rejected_buyer_lapsed": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop(
            "Return of invoice %(number)s closed: red-letter form %(form)s was not confirmed in "
            "72 hours. The invoice stays valid."
        ),
    ),
    "return_rejected_paper_overdue": Template(
        SmsPurpose.RETURN_REJECTED,
        gettext_noop(
            "Return of invoice %(number)s closed: the paper did not arrive within %(days)s "
            "days. You may return it again."
        ),
    ),
    "form_rejected": Template(
        SmsPurpose.FORM_REJECTED,
        gettext_noop("The red-letter form for invoice %(number)s was rejected: %(note)s."),
        free="note",
        then=gettext_noop("Please upload it again."),
    ),
    "return_completed_voided": Template(
        SmsPurpose.RETURN_COMPLETED,
        gettext_noop(
            "Invoice %(number)s is voided and %(amount)s is invoiceable again. You may apply "
            "for a new invoice."
        ),
    ),
    "return_completed_reversed": Template(
        SmsPurpose.RETURN_COMPLETED,
        gettext_noop(
            "Invoice %(number)s is reversed by red-letter invoice %(red)s; %(amount)s is "
            "invoiceable again. You may reapply."
        ),
    ),
    "buyer_confirmation": Template(
        SmsPurpose.BUYER_CONFIRMATION,
        gettext_noop(
            "Invoice %(number)s: confirm red-letter form %(form)s on your e-tax platform by "
            "%(deadline)s Beijing time."
        ),
    ),
    "paper_reminder": Template(
        SmsPurpose.PAPER_REMINDER,
        gettext_noop(
            "We have not received the paper invoice %(number)s you returned %(days)s days "
            "ago. Please mail it: the return closes after %(close)s days."
        ),
    ),
}


def signature_for(to: str) -> str:
    """The sender's signature an SMS to ``to`` starts with (see the module's docstring)."""
    if to.startswith(MAINLAND_PREFIX):
        return settings.SMS_SIGNATURE
    return settings.SMS_SIGNATURE_INTERNATIONAL


def _is_chinese(language: str) -> bool:
    return language.lower().startswith("zh")


def _value(param: Param, language: str) -> str:
    if isinstance(param, Mapping):
        if language in param:
            return param[language]
        return param["zh-hans" if _is_chinese(language) else "en"]
    return str(param)


def _normalized(text: str) -> str:
    """Letters and digits only, lower case: how "says the same" is compared."""
    return re.sub(r"[\W_]+", "", text).lower()


def _clean_free(text: str, *, sms: bool = True) -> str:
    """Whitespace folded, trailing punctuation dropped (the template closes the sentence),
    limited to ``FREE_TEXT_MAX`` characters in an SMS (an email carries it whole)."""
    text = " ".join(str(text).split()).rstrip("。.；;，,：:！!、 ")
    if sms and len(text) > FREE_TEXT_MAX:
        text = text[: FREE_TEXT_MAX - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return text


def _quote(text: str, language: str, *, sms: bool) -> str:
    if _is_chinese(language):
        return f"「{text}」"
    return f'"{text}"' if sms else f"“{text}”"


def render(template_key: str, params: Params, *, language: str, sms: bool) -> str:
    """The message in ``language``, without the signature; an SMS's typed text is quoted with
    GSM characters in English. Not shortened: see ``sms_body``."""
    return _render(template_key, params, language=language, sms=sms, free_text=None)


def _render(
    template_key: str, params: Params, *, language: str, sms: bool, free_text: str | None
) -> str:
    template = TEMPLATES[template_key]
    with translation.override(language):
        values = {name: _value(param, language) for name, param in params.items()}
        then = _(template.then) if template.then else ""
        if template.free:
            free = _clean_free(values.get(template.free, ""), sms=sms)
            if free_text is not None:
                free = free_text
            if then and _normalized(then) in _normalized(free):
                then = ""
            values[template.free] = _quote(free, language, sms=sms)
        text = _(template.text) % values
        if then:
            text += ("" if _is_chinese(language) else " ") + then
    return text


def sms_body(template_key: str, params: Params, *, language: str, to: str) -> str:
    """The SMS as sent: signature first, in one segment where possible (the typed text is
    shortened to fit when enough of it stays, see the module's docstring)."""
    signature = signature_for(to)

    def body(free_text: str | None) -> str:
        text = _render(template_key, params, language=language, sms=True, free_text=free_text)
        return signature + ("" if signature.endswith("】") else " ") + text

    whole = body(None)
    template = TEMPLATES[template_key]
    if fits_one_segment(whole) or not template.free:
        return whole
    free = _clean_free(_value(params.get(template.free, ""), language))
    low, high = 0, len(free)  # the longest prefix that fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits_one_segment(body(free[:middle].rstrip() + ELLIPSIS)):
            low = middle
        else:
            high = middle - 1
    if low < min(FREE_TEXT_KEPT, len(free)):
        return whole
    return body(free[:low].rstrip() + ELLIPSIS)


def _sender_name(language: str) -> str:
    """The signature without its brackets, to sign an email."""
    signature = (
        settings.SMS_SIGNATURE if _is_chinese(language) else settings.SMS_SIGNATURE_INTERNATIONAL
    )
    return signature.strip("【】[] ")


def email_subject(template_key: str, params: Params, *, language: str) -> str:
    """The email's subject: the invoice and what happened, in the customer's language."""
    purpose = TEMPLATES[template_key].purpose
    with translation.override(language):
        return _("Invoice %(number)s: %(what)s") % {
            "number": _value(params.get("number", ""), language),
            "what": SmsPurpose(purpose).label,
        }


def email_body(template_key: str, params: Params, *, language: str) -> str:
    """The email's plain text: the SMS's text (typed text whole, quoted), where to follow the
    return, and who sends it."""
    text = render(template_key, params, language=language, sms=False)
    with translation.override(language):
        follow = _("You can follow your returns under Invoice Management in the Billing Center.")
    return f"{text}\n\n{follow}\n\n{_sender_name(language)}\n"


def in_each_language(make: Callable[[], object]) -> dict[str, str]:
    """A parameter worded by the system, in every language the portal speaks."""
    values = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            values[code] = str(make())
    return values
