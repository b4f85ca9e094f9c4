"""Twilio's status callback: Twilio tells us what became of a message we sent."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from notifications.services import sms_status_update


@csrf_exempt  # Twilio cannot send a CSRF token; the request is authenticated by its signature.
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    """Apply a signed status callback.

    Answers 200 with an empty body whenever the signature is valid, even for a message we do
    not know, because any other answer makes Twilio retry a callback that can never apply.
    The signature covers the public URL Twilio called; behind a TLS proxy
    ``SECURE_PROXY_SSL_HEADER`` must be set for ``build_absolute_uri()`` to match it.
    """
    # Without a token anyone could sign with the empty key: refuse everything instead.
    if not settings.TWILIO_AUTH_TOKEN:
        return HttpResponseForbidden()
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    if not validator.validate(request.build_absolute_uri(), request.POST, signature):
        return HttpResponseForbidden()
    sms_status_update(
        provider_id=request.POST.get("MessageSid", ""),
        status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", ""),
    )
    return HttpResponse(status=200)
