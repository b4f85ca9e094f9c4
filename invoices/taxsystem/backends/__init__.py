"""Tax-system backends. Only ``invoices.taxsystem.interface.get_tax_system`` imports these."""
