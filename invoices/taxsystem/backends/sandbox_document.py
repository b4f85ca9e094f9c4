"""The sandbox's digital invoice file: a PDF laid out like a 数电票, marked as a sandbox document
on every line that matters, so that nobody mistakes it for a real invoice.

Drawn with ReportLab and its built-in CID font for simplified Chinese (STSong-Light), which
needs no font file: PDF readers supply the glyphs.
"""

import datetime as dt
import io
from zoneinfo import ZoneInfo

from django.conf import settings
from reportlab.lib.pagesizes import A5, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from invoices.models import InvoiceType
from invoices.tax import rate_as_printed
from invoices.taxsystem.interface import IssueSubmission

FONT = "STSong-Light"
SANDBOX_MARK = "沙箱样张 · 非有效发票 · SANDBOX DOCUMENT · NOT A VALID INVOICE"
TITLES = {
    InvoiceType.SPECIAL: "电子发票（增值税专用发票）",
    InvoiceType.ORDINARY: "电子发票（普通发票）",
}


def _font() -> str:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def sandbox_invoice_pdf(
    submission: IssueSubmission, *, number: str, issued_at: dt.datetime
) -> bytes:
    """One page: title, number, date, buyer, seller, amount / rate / tax / total, and the
    sandbox mark across the page and in the footer."""
    font = _font()
    buffer = io.BytesIO()
    width, height = landscape(A5)
    pdf = canvas.Canvas(buffer, pagesize=(width, height), invariant=True)
    pdf.setTitle(f"{TITLES[InvoiceType(submission.invoice_type)]} {number} (SANDBOX)")
    pdf.setAuthor("Invoice-return portal tax sandbox")

    # The mark, large and diagonal behind everything.
    pdf.saveState()
    pdf.setFillColorRGB(0.85, 0.1, 0.1, alpha=0.18)
    pdf.setFont(font, 34)
    pdf.translate(width / 2, height / 2)
    pdf.rotate(25)
    pdf.drawCentredString(0, 10 * mm, "沙箱样张  非有效发票")
    pdf.drawCentredString(0, -8 * mm, "SANDBOX · NOT A VALID INVOICE")
    pdf.restoreState()

    local = issued_at.astimezone(ZoneInfo(settings.BUSINESS_TIME_ZONE))
    pdf.setFillColorRGB(0.6, 0.1, 0.1)
    pdf.setFont(font, 16)
    pdf.drawCentredString(width / 2, height - 18 * mm, TITLES[InvoiceType(submission.invoice_type)])
    pdf.setFont(font, 9)
    pdf.drawRightString(width - 12 * mm, height - 26 * mm, f"发票号码 Number: {number}")
    pdf.drawRightString(width - 12 * mm, height - 31 * mm, f"开票日期 Date: {local:%Y年%m月%d日}")

    pdf.setFillColorRGB(0, 0, 0)
    lines = [
        f"购买方 Buyer: {submission.buyer_name}",
        f"统一社会信用代码/纳税人识别号 Taxpayer ID: {submission.buyer_taxpayer_id or '—'}",
    ]
    if submission.buyer_address_phone:
        lines.append(f"地址、电话 Address, phone: {submission.buyer_address_phone}")
    if submission.buyer_bank_account:
        lines.append(f"开户行及账号 Bank, account: {submission.buyer_bank_account}")
    lines += [
        f"销售方 Seller: {submission.seller_name}",
        "项目名称 Item: *信息技术服务*云计算服务 Cloud services",
        f"金额 Amount: ¥{submission.amount}    "
        f"税率 Rate: {rate_as_printed(submission.tax_rate)}    税额 Tax: ¥{submission.tax}",
        f"价税合计 Total: ¥{submission.total}",
    ]
    y = height - 42 * mm
    for line in lines:
        pdf.drawString(14 * mm, y, line)
        y -= 7 * mm

    pdf.setFillColorRGB(0.8, 0.1, 0.1)
    pdf.setFont(font, 10)
    pdf.drawCentredString(width / 2, 10 * mm, SANDBOX_MARK)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
