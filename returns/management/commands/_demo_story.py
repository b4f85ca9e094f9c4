"""What the demo data says happened, and when: two Chinese companies, their bills, invoices and
returns over the last months, written as a plan that ``demo_data`` plays through the services.

Nothing here writes to the database. The ``_`` keeps Django from taking this module for a
management command.

Dates are relative to the month the demo is anchored in (``Calendar``): "the 9th working day
of two months ago" or "30 % of the way through this month's working days so far". The
anchor is the month of the first run, found again from the stored statements, so a second
run a month later still recognises everything it made.
"""

import datetime as dt
import io
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw

from invoices.models import InvoiceMedium, InvoiceType, ReversalReason
from invoices.workdays import is_working_day
from returns.models import ReturnProblem

# --- Time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class On:
    """The n-th working day of an earlier month (1 = last month), at a time of day."""

    months_back: int
    workday: int
    time: str = "10:00"


@dataclass(frozen=True)
class ThisMonth:
    """A moment this month: a fraction (0 to 1) of the working days before today."""

    fraction: float


@dataclass(frozen=True)
class HoursAgo:
    """A moment shortly before the demo was made (a 72-hour deadline still running)."""

    hours: float


When = On | ThisMonth | HoursAgo


def month_start(day: dt.date, months_back: int) -> dt.date:
    year, month = day.year, day.month - months_back
    while month < 1:
        month += 12
        year -= 1
    return dt.date(year, month, 1)


class Calendar:
    """Turns ``On`` and ``ThisMonth`` into moments in Asia/Shanghai, on Chinese working days.

    Everything this month lies before ``now``. Early in a month, with fewer than three working
    days behind today, this month's moments are spread over the time since midnight on the 1st
    instead (on the 1st at 00:05 they are seconds apart, but still in order).
    """

    def __init__(self, *, month: dt.date, now: dt.datetime, tz: ZoneInfo) -> None:
        self.tz = tz
        self.month = month_start(month, 0)
        self.start = dt.datetime.combine(self.month, dt.time(), tzinfo=tz)
        self.now = now.astimezone(tz)
        today = self.now.date()
        self.days_before_today = [
            day for day in _days(self.month) if day < today and is_working_day(day)
        ]

    def at(self, when: When) -> dt.datetime:
        if isinstance(when, HoursAgo):
            return self.now - dt.timedelta(hours=when.hours)
        if isinstance(when, On):
            days = [
                day
                for day in _days(month_start(self.month, when.months_back))
                if is_working_day(day)
            ]
            day = days[min(when.workday, len(days)) - 1]
            return dt.datetime.combine(day, dt.time.fromisoformat(when.time), tzinfo=self.tz)
        if len(self.days_before_today) >= 3:
            position = when.fraction * len(self.days_before_today)
            index = int(position)
            opening = dt.datetime.combine(self.days_before_today[index], dt.time(9), tzinfo=self.tz)
            return opening + dt.timedelta(minutes=round((position - index) * 9 * 60))  # to 18:00
        return self.start + (self.now - self.start) * when.fraction


def _days(first: dt.date) -> list[dt.date]:
    following = month_start(first.replace(day=28) + dt.timedelta(days=4), 0)
    return [first + dt.timedelta(days=n) for n in range((following - first).days)]


# --- Identities ---------------------------------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997


def org_code_check(body: str) -> str:
    """The check character of an organisation code (组织机构代码, GB 11714): 8 characters in."""
    total = sum(
        (int(char) if char.isdigit() else ord(char) - ord("A") + 10) * weight
        for char, weight in zip(body, ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def uscc(*, authority_and_kind: str, division: str, org_code_body: str) -> str:
    """A unified social credit code (统一社会信用代码, GB 32100-2015), check characters computed.

    Registration authority + entity kind (``91``: an enterprise registered with market
    regulation), the 6-digit administrative division, the 9-character organisation code
    (8 characters and its GB 11714 check) and the GB 32100 check character.
    """
    first17 = authority_and_kind + division + org_code_body + org_code_check(org_code_body)
    total = sum(
        USCC_ALPHABET.index(char) * pow(3, position, 31) for position, char in enumerate(first17)
    )
    return first17 + USCC_ALPHABET[(31 - total % 31) % 31]


@dataclass(frozen=True)
class Company:
    """A demo customer: the company, its portal log-in and what it prints on its invoices."""

    username: str
    name: str
    division: str  # administrative division of its registration (330106: Xihu, Hangzhou)
    org_code_body: str
    mobile: str  # the SMS number, E.164 in the 138 0013 8xxx test range
    registered_address: str
    registered_phone: str
    bank_name: str
    bank_account: str
    mailing_recipient: str
    mailing_address: str
    mailing_postal_code: str
    email: str  # where its digital invoices are also sent
    registered: On  # when it opened its account with the provider

    @property
    def taxpayer_id(self) -> str:
        return uscc(
            authority_and_kind="91", division=self.division, org_code_body=self.org_code_body
        )

    @property
    def mailing_phone(self) -> str:
        """The recipient's mobile as people write it on a mailing label."""
        return self.mobile.removeprefix("+86")

    def application_fields(
        self, invoice_type: str, medium: str = InvoiceMedium.PAPER
    ) -> dict[str, str]:
        fields = {"title": self.name, "taxpayer_id": self.taxpayer_id, "medium": medium}
        if medium == InvoiceMedium.DIGITAL:
            fields["email"] = self.email  # nothing to mail: the file goes by email
        else:
            fields |= {
                "mailing_recipient": self.mailing_recipient,
                "mailing_phone": self.mailing_phone,
                "mailing_address": self.mailing_address,
                "mailing_postal_code": self.mailing_postal_code,
            }
        if invoice_type == InvoiceType.SPECIAL:
            fields |= {
                "registered_address": self.registered_address,
                "registered_phone": self.registered_phone,
                "bank_name": self.bank_name,
                "bank_account": self.bank_account,
            }
        return fields


HANGZHOU = Company(
    username="demo-customer",
    name="杭州云启科技有限公司",
    division="330106",
    org_code_body="MA2CQ7K4",
    mobile="+8613800138000",
    registered_address="浙江省杭州市西湖区文三路199号创业大厦11楼1103室",
    registered_phone="0571-85021234",
    bank_name="中国工商银行杭州西湖支行",
    bank_account="1202021209900123456",
    mailing_recipient="王芳",
    mailing_address="浙江省杭州市西湖区文三路199号创业大厦11楼1103室 财务部",
    mailing_postal_code="310012",
    email="caiwu@yunqi-tech.example",
    registered=On(7, 3, "15:20"),
)
SHANGHAI = Company(
    username="demo-customer-2",
    name="上海星河数据服务有限公司",
    division="310115",
    org_code_body="MA1FL3D8",
    mobile="+8613800138016",
    registered_address="上海市浦东新区张江路368号星河大厦7楼",
    registered_phone="021-50801234",
    bank_name="招商银行上海张江支行",
    bank_account="121908765410601",
    mailing_recipient="李静",
    mailing_address="上海市浦东新区张江路368号星河大厦7楼 财务室",
    mailing_postal_code="201203",
    email="finance@xinghe-data.example",
    registered=On(5, 8, "10:45"),
)
COMPANIES = (HANGZHOU, SHANGHAI)

# A Cloud Market provider: it issues its own invoices, which are shown but not returned here.
MARKETPLACE_ISSUER = "上海云栈软件有限公司（云市场服务商）"

SF = "顺丰速运"
EMS = "中国邮政EMS"
JD = "京东物流"


def special_code(anchor: dt.date) -> str:
    """The provider's paper special invoices (10 digits): Zhejiang (3300), printed last year,
    batch 1, Chinese, three copies (发票联, 抵扣联, 记账联), amounts printed by computer."""
    return f"3300{(anchor.year - 1) % 100:02d}1130"


def ordinary_code(anchor: dt.date) -> str:
    """The provider's paper ordinary invoices (12 digits): state tax (0), Zhejiang, printed last
    year, batch 001, two copies (04)."""
    return f"03300{(anchor.year - 1) % 100:02d}00104"


def marketplace_code(anchor: dt.date) -> str:
    """The Cloud Market provider's ordinary invoices, bought in Shanghai (3100)."""
    return f"03100{(anchor.year - 1) % 100:02d}00104"


def invoice_code(invoice_type: str, anchor: dt.date) -> str:
    return special_code(anchor) if invoice_type == InvoiceType.SPECIAL else ordinary_code(anchor)


# --- The story ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paper:
    """An envelope finance opens: which parts of the paper invoice are in it (R5)."""

    received: When
    courier: str
    tracking_number: str
    invoice_form: bool = True
    deduction_form: bool = True
    undamaged: bool = True
    notes: str = ""


@dataclass(frozen=True)
class Return:
    """A return the customer submits, and what happens to it; ``ends`` names the state it is
    left in (the banner and the tests read it)."""

    ends: str
    submitted: When
    reason: str
    problem: str
    reason_code: str = ReversalReason.ISSUING_ERROR
    certified: bool | None = None  # the answer for a special invoice
    buyer_form_serial: int = 0  # certified: the buyer filed a red-letter information form
    courier: str = ""
    tracking_number: str = ""
    paper: Paper | None = None
    cancelled: When | None = None
    tax_system: str = "sandbox"  # "manual": finance acts in the tax system, the return waits
    tax_sandbox_fail: str = ""  # "permanent": the sandbox refuses the request
    buyer_booked: bool | None = None  # the answer for a digital invoice (入账 / 用途确认)
    buyer_decides: tuple[When, bool] | None = None  # when the buyer confirms (True) or refuses
    asked_again: When | None = None  # the sandbox is asked again then (72 hours gone by)


@dataclass(frozen=True)
class PlannedInvoice:
    company: Company
    invoice_type: str
    total: str  # 价税合计: what the customer applies for; amount and tax are split from it
    number: str  # paper: the number printed; digital: "" (the sandbox tax platform numbers it)
    applied: When
    issued: When
    returned: Return | None = None
    paper_first: Paper | None = None  # mailed back and logged before any online return
    medium: str = InvoiceMedium.PAPER


@dataclass(frozen=True)
class PlannedStatement:
    company: Company
    months_back: int  # the billed month
    amount: str
    settled: When


@dataclass(frozen=True)
class Story:
    statements: list[PlannedStatement] = field(default_factory=list)
    invoices: list[PlannedInvoice] = field(default_factory=list)
    pending: list[tuple[Company, str, str, When]] = field(default_factory=list)
    marketplace: list[tuple[Company, str, str, When]] = field(default_factory=list)


SPECIAL, ORDINARY = InvoiceType.SPECIAL, InvoiceType.ORDINARY
DIGITAL = InvoiceMedium.DIGITAL

STORY = Story(
    statements=[
        # A monthly bill becomes invoiceable when it is paid, early the next month.
        PlannedStatement(HANGZHOU, 6, "30800.00", On(5, 2, "10:15")),
        PlannedStatement(HANGZHOU, 5, "33900.00", On(4, 2, "10:15")),
        PlannedStatement(HANGZHOU, 4, "28320.00", On(3, 2, "10:15")),
        PlannedStatement(HANGZHOU, 3, "31150.80", On(2, 2, "10:15")),
        PlannedStatement(SHANGHAI, 3, "24600.00", On(2, 3, "11:40")),
        PlannedStatement(HANGZHOU, 2, "36480.00", On(1, 2, "10:15")),
        PlannedStatement(SHANGHAI, 2, "19850.00", On(1, 3, "11:40")),
        PlannedStatement(HANGZHOU, 1, "19260.45", ThisMonth(0.006)),
    ],
    invoices=[
        # Special invoices (one code), numbered in the order they were issued.
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "26500.00",
            "04518233",
            On(3, 7, "09:40"),
            On(3, 9, "15:10"),
            returned=Return(
                "completed:reversed",
                On(2, 3, "10:20"),
                "发票上的开户行及账号有误，应为中国工商银行杭州西湖支行，请退回重开。",
                ReturnProblem.ADDRESS,
                certified=False,
                courier=SF,
                tracking_number="SF1402256318725",
                paper=Paper(On(2, 5, "14:05"), SF, "SF1402256318725"),
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "18000.00",
            "04521907",
            On(2, 4, "16:25"),
            On(2, 6, "11:30"),
            returned=Return(
                "failed",
                On(1, 4, "09:50"),
                "购买方名称少了“科技”二字，需红冲后按正确名称重开。",
                ReturnProblem.TITLE,
                certified=False,
                courier=EMS,
                tracking_number="1180212345678",
                paper=Paper(On(1, 6, "10:35"), EMS, "1180212345678"),
                tax_sandbox_fail="permanent",
            ),
        ),
        PlannedInvoice(
            HANGZHOU, SPECIAL, "8800.00", "04523561", On(2, 12, "13:05"), On(2, 14, "10:20")
        ),
        PlannedInvoice(
            SHANGHAI,
            SPECIAL,
            "15900.00",
            "04526014",
            On(1, 4, "15:00"),
            On(1, 6, "16:45"),
            returned=Return(
                "submitted",
                ThisMonth(0.409),
                "专用发票上的纳税人识别号有一位写错，抵扣时系统校验不通过。",
                ReturnProblem.TAXPAYER_ID,
                certified=False,
                courier=EMS,
                tracking_number="1180298765432",
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "21000.00",
            "04526102",
            On(1, 5, "11:10"),
            On(1, 7, "09:55"),
            returned=Return(
                "received",
                ThisMonth(0.347),
                "已勾选认证抵扣，项目已停止，已在电子税务局填开红字发票信息表，请凭信息表红冲。",
                ReturnProblem.OTHER,
                reason_code=ReversalReason.SERVICE_STOPPED,
                certified=True,
                buyer_form_serial=612,
                courier=SF,
                tracking_number="SF1402290113467",
                paper=Paper(ThisMonth(0.562), SF, "SF1402290113467"),
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "9600.00",
            "04527740",
            On(1, 10, "14:30"),
            On(1, 12, "10:05"),
            returned=Return(
                "awaiting_tax",
                ThisMonth(0.311),
                "合同约定的商务折扣未体现在发票金额中，请红冲后按折后金额重开。",
                ReturnProblem.AMOUNT,
                reason_code=ReversalReason.SALES_DISCOUNT,
                certified=False,
                courier=JD,
                tracking_number="JDVA20948571362",
                paper=Paper(ThisMonth(0.617), JD, "JDVA20948571362"),
                tax_system="manual",
            ),
        ),
        PlannedInvoice(
            HANGZHOU, SPECIAL, "12800.00", "04530012", ThisMonth(0.083), ThisMonth(0.153)
        ),
        # Ordinary invoices (one code).
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "1288.00",
            "21093518",
            On(3, 11, "10:40"),
            On(3, 13, "14:15"),
            returned=Return(
                "rejected",
                On(2, 8, "11:05"),
                "发票抬头应为公司全称，开成了简称。",
                ReturnProblem.TITLE,
                courier=SF,
                tracking_number="SF1402261940388",
                paper=Paper(
                    On(2, 10, "15:20"),
                    SF,
                    "SF1402261940388",
                    invoice_form=False,
                    notes="信封内只有发票复印件，没有发票联原件。",
                ),
            ),
        ),
        PlannedInvoice(
            SHANGHAI,
            ORDINARY,
            "2350.00",
            "21101264",
            On(2, 9, "09:30"),
            On(2, 11, "11:00"),
            paper_first=Paper(ThisMonth(0.456), SF, "SF1402287765021"),
        ),
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "3560.50",
            "21101307",
            On(2, 10, "14:45"),
            On(2, 12, "09:35"),
            returned=Return(
                "cancelled",
                On(1, 8, "16:10"),
                "发票内容应为“信息技术服务费”。",
                ReturnProblem.OTHER,
                cancelled=On(1, 9, "09:15"),
            ),
        ),
        PlannedInvoice(
            HANGZHOU, ORDINARY, "980.00", "21108842", On(1, 7, "10:00"), On(1, 9, "14:40")
        ),
        PlannedInvoice(
            SHANGHAI, ORDINARY, "5300.00", "21110596", On(1, 11, "09:20"), On(1, 13, "10:30")
        ),
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "4200.00",
            "21111023",
            On(1, 12, "15:35"),
            On(1, 14, "11:15"),
            returned=Return(
                "submitted",
                ThisMonth(0.517),
                "开票金额多开了一个月的费用，请作废重开。",
                ReturnProblem.AMOUNT,
                courier=SF,
                tracking_number="SF1402297730254",
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "2480.00",
            "21116370",
            ThisMonth(0.053),
            ThisMonth(0.097),
            returned=Return(
                "completed:voided",
                ThisMonth(0.262),
                "需要开增值税专用发票，误选了普通发票。",
                ReturnProblem.TYPE,
                courier=SF,
                tracking_number="SF1402283350917",
                paper=Paper(ThisMonth(0.407), SF, "SF1402283350917"),
            ),
        ),
        PlannedInvoice(
            HANGZHOU, ORDINARY, "1560.00", "21116911", ThisMonth(0.127), ThisMonth(0.213)
        ),
        # Digital invoices (数电票): one 20-digit number each, issued by the tax platform at once
        # and emailed; returned online only, reversed through a red-letter confirmation form.
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "3180.00",
            "",
            On(2, 15, "10:00"),
            On(2, 15, "10:01"),
            medium=DIGITAL,
            returned=Return(
                "completed:reversed",
                On(1, 3, "14:20"),
                "发票备注栏漏填了项目名称，财务无法入账，尚未入账，请红冲后重开。",
                ReturnProblem.OTHER,
                buyer_booked=False,
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "11200.00",
            "",
            On(1, 2, "09:30"),
            On(1, 2, "09:31"),
            medium=DIGITAL,
            returned=Return(
                "rejected",
                On(1, 8, "10:10"),
                "已用途确认抵扣，开票单位名称有误，请开具红字确认单。",
                ReturnProblem.TITLE,
                buyer_booked=True,
                asked_again=ThisMonth(0.02),  # nobody confirmed in 72 hours: the form lapsed
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "5940.00",
            "",
            On(1, 9, "11:00"),
            On(1, 9, "11:01"),
            medium=DIGITAL,
            returned=Return(
                "failed",
                On(1, 16, "15:30"),
                "服务已于上月停止，发票需全额红冲。",
                ReturnProblem.OTHER,
                reason_code=ReversalReason.SERVICE_STOPPED,
                buyer_booked=False,
                tax_sandbox_fail="permanent",
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            ORDINARY,
            "2260.00",
            "",
            On(1, 11, "16:00"),
            On(1, 11, "16:01"),
            medium=DIGITAL,
            returned=Return(
                "rejected",
                ThisMonth(0.12),
                "已入账，财务认为金额有误要求红冲。",
                ReturnProblem.AMOUNT,
                buyer_booked=True,
                buyer_decides=(ThisMonth(0.2), False),  # the buyer's finance refused it
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "7420.00",
            "",
            On(1, 17, "10:40"),
            On(1, 17, "10:41"),
            medium=DIGITAL,
            returned=Return(
                "awaiting_tax",
                ThisMonth(0.63),
                "纳税人识别号录入错误，尚未用途确认，请红冲后重开。",
                ReturnProblem.TAXPAYER_ID,
                buyer_booked=False,
                tax_system="manual",
            ),
        ),
        PlannedInvoice(
            HANGZHOU,
            SPECIAL,
            "16800.00",
            "",
            On(1, 12, "14:00"),
            On(1, 12, "14:01"),
            medium=DIGITAL,
            returned=Return(
                "awaiting_buyer",
                HoursAgo(20),
                "专票已用途确认，项目名称开错，需购买方确认红字确认单后重开。",
                ReturnProblem.OTHER,
                buyer_booked=True,
            ),
        ),
        PlannedInvoice(
            HANGZHOU, SPECIAL, "6360.00", "", ThisMonth(0.3), ThisMonth(0.301), medium=DIGITAL
        ),
        PlannedInvoice(
            HANGZHOU, ORDINARY, "1880.00", "", ThisMonth(0.45), ThisMonth(0.451), medium=DIGITAL
        ),
    ],
    # Applications finance has not issued yet.
    pending=[(HANGZHOU, ORDINARY, "1200.00", ThisMonth(0.917))],
    marketplace=[(HANGZHOU, ORDINARY, "688.00", On(1, 6, "13:25"))],
)
MARKETPLACE_NUMBER = "07261945"


def buyer_form_number(company: Company, filed: dt.date, serial: int) -> str:
    """A red-letter information form number (16 digits) as the buyer's tax office gives it:
    the office (first five digits of the division), the date it was filed and a serial."""
    return f"{company.division[:5]}{filed:%y%m%d}{serial:05d}"


def form_scan(form_number: str) -> bytes:
    """A stand-in scan of a red-letter information form (PNG)."""
    image = Image.new("RGB", (640, 400), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 630, 390), outline="red", width=3)
    draw.text((30, 30), "Red-letter information form (demo scan)", fill="red")
    draw.text((30, 60), f"No. {form_number}", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
