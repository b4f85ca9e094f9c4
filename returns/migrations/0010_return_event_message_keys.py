"""Timeline notes become message keys + parameters, worded in the reader's language when shown
(issue 12), and each event says what kind of actor acted.

Existing rows: the actor's kind from the user (none: the system; staff: staff; else the
customer). A note that is exactly one of the fixed system texts, in English or Chinese, becomes
its key; every other note (typed by a person, or worded with values at the time) stays as it
was written, and is shown so."""

import django.core.serializers.json
from django.db import migrations, models

# The fixed texts as they were worded (frozen here): key, English, Chinese.
FIXED_NOTES = [
    ("return.cancelled_by_customer", "Cancelled by customer", "客户撤销"),
    ("return.retried_by_staff", "Retried by staff", "工作人员重试"),
    ("return.ready", "Ready to process", "待处理"),
    (
        "return.ready_form_approved",
        "Red-letter information form approved: ready to process",
        "红字信息表已审核通过，待处理",
    ),
    (
        "return.digital_sent",
        "A digital invoice is not mailed: sent to the tax system",
        "数电票无需寄回：已提交税务系统",
    ),
]


def forwards(apps, schema_editor):
    ReturnEvent = apps.get_model("returns", "ReturnEvent")
    ReturnEvent.objects.filter(actor__isnull=False, actor__is_staff=True).update(
        actor_kind="staff"
    )
    ReturnEvent.objects.filter(actor__isnull=False, actor__is_staff=False).update(
        actor_kind="customer"
    )
    for key, english, chinese in FIXED_NOTES:
        ReturnEvent.objects.filter(note_key="", note__in=[english, chinese]).update(
            note_key=key, note=""
        )


def backwards(apps, schema_editor):
    ReturnEvent = apps.get_model("returns", "ReturnEvent")
    for key, english, _chinese in FIXED_NOTES:
        ReturnEvent.objects.filter(note_key=key, note="").update(note=english)


class Migration(migrations.Migration):

    dependencies = [
        ('returns', '0009_backoffice_search_and_rejection_reasons'),
    ]

    operations = [
        migrations.AddField(
            model_name='returnevent',
            name='actor_kind',
            field=models.CharField(choices=[('customer', 'Customer'), ('staff', 'Staff'), ('system', 'System')], default='system', max_length=8, verbose_name='actor type'),
        ),
        migrations.AddField(
            model_name='returnevent',
            name='note_key',
            field=models.CharField(blank=True, max_length=64, verbose_name='message key'),
        ),
        migrations.AddField(
            model_name='returnevent',
            name='note_params',
            field=models.JSONField(blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder, verbose_name='message parameters'),
        ),
        migrations.RunPython(forwards, backwards),
    ]
