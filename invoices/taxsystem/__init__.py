"""The tax-system boundary: where invoices are legally voided and reversed.

Our database only records what the tax system did. A void or a red-letter invoice is a
*request* (``TaxRequest``, under our own serial number) handed to a backend; it exists once the
tax system's outcome is recorded, with the numbers the tax system gave.

Callers (the ``returns`` app) use ``invoices.taxsystem.services`` and the types of
``invoices.taxsystem.interface`` only, never a backend module. ``TAX_SYSTEM_BACKEND`` picks the
backend:

- ``manual`` (production default): submitting does nothing outside; the pending request is a
  row in finance's back-office queue "To do in the tax system", and finance records the
  outcome by hand (``records_by_hand``).
- ``sandbox`` (development and tests): a simulation of the e-tax platform with its rules,
  answering asynchronously, told to fail on demand (``TAX_SANDBOX_FAIL``).
- a dotted path to a ``TaxSystemBackend`` subclass: an invoicing service provider's HTTP API.

Writing a provider backend: implement ``submit`` (idempotent per ``TaxSubmission.serial``:
submitting the same serial twice must not void or reverse twice; answer PENDING, or the final
result if the provider answers at once) and ``query`` (the result for a serial), raising
``TaxSystemTransientError`` for what may pass (timeouts, 5xx, rate limits) and answering
``REFUSED`` with the provider's message for a permanent refusal. For a paper special invoice
the submission says whose red-letter information form applies: the buyer's number, or
``seller_files_form`` (apply for the form, wait for its number, then issue against it). Set
``poll_after_seconds`` to how soon a result is worth asking for. Nothing in ``returns``
changes.
"""
