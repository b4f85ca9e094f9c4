"""Rejection reasons finance reuses (a starting list in both languages, which superusers
edit), the reason picked and the text added on a rejected return; indexes for searching by the
courier's tracking number."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


# The reasons a finance team gives most, worded for the customer (who reads them in the portal
# and the SMS) in both languages.
STARTING_REASONS = [
    (
        "The paper invoice has not arrived.",
        "我们尚未收到您寄回的纸质发票。",
    ),
    (
        "The returned paper is incomplete: please send every part of the invoice.",
        "寄回的纸质发票不完整：请寄回发票的全部联次。",
    ),
    (
        "The red-letter information form does not match the invoice.",
        "红字信息表与发票信息不符。",
    ),
    (
        "The invoice is being returned in another application.",
        "该发票已在另一退票申请中处理。",
    ),
]


def add_starting_reasons(apps, schema_editor):
    reason_model = apps.get_model("returns", "RejectionReason")
    if reason_model.objects.exists():
        return
    for position, (text_en, text_zh) in enumerate(STARTING_REASONS, start=1):
        reason_model.objects.create(text_en=text_en, text_zh=text_zh, position=position)


class Migration(migrations.Migration):

    dependencies = [
        ('invoices', '0010_backoffice_search_indexes'),
        ('returns', '0008_digital_invoices'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RejectionReason',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('text_en', models.CharField(max_length=300, verbose_name='text in English')),
                ('text_zh', models.CharField(max_length=300, verbose_name='text in Chinese')),
                ('active', models.BooleanField(default=True, help_text='Retired reasons stay on the returns they gave.', verbose_name='offered')),
                ('position', models.PositiveSmallIntegerField(default=0, verbose_name='position')),
            ],
            options={
                'verbose_name': 'rejection reason',
                'verbose_name_plural': 'rejection reasons',
                'ordering': ['position', 'id'],
            },
        ),
        migrations.AddField(
            model_name='returnrequest',
            name='rejection_note',
            field=models.CharField(blank=True, max_length=500, verbose_name='rejection note'),
        ),
        migrations.AddIndex(
            model_name='mailreceipt',
            index=models.Index(condition=models.Q(('tracking_number', ''), _negated=True), fields=['tracking_number'], name='mail_receipt_tracking_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.AddConstraint(
            model_name='rejectionreason',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('text_en', ''), _negated=True), models.Q(('text_zh', ''), _negated=True)), name='rejection_reason_both_languages'),
        ),
        migrations.AddField(
            model_name='returnrequest',
            name='rejection_choice',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='returns.rejectionreason', verbose_name='listed rejection reason'),
        ),
        migrations.AddIndex(
            model_name='returnrequest',
            index=models.Index(condition=models.Q(('tracking_number', ''), _negated=True), fields=['tracking_number'], name='return_tracking_idx', opclasses=['varchar_pattern_ops']),
        ),
        migrations.RunPython(add_starting_reasons, migrations.RunPython.noop),
    ]
