"""Production default: finance acts in the tax system by hand and records the outcome here.

Submitting sends nothing anywhere: the pending ``TaxRequest`` row is the task in the back
office queue "To do in the tax system", holding everything finance needs to act there. The
outcome comes back through ``return_request_record_outcome`` when finance saves it.
"""

from typing import ClassVar

from invoices.taxsystem.interface import TaxResult, TaxSubmission, TaxSystemBackend


class ManualTaxSystem(TaxSystemBackend):
    name: ClassVar[str] = "manual"
    records_by_hand: ClassVar[bool] = True

    def submit(self, submission: TaxSubmission) -> TaxResult:
        return TaxResult.pending(submission.serial)

    def query(self, serial: str) -> TaxResult:
        return TaxResult.pending(serial)
