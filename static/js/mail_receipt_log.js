// The post room's envelope form (admin/returns/mailreceipt/log.html), loaded as a file: the CSP
// allows no inline script. A barcode or QR scanner types the code and ends with Enter.
(function () {
  var scan = document.getElementById("id_code_and_number");
  var parts = ["id_invoice_form_present", "id_deduction_form_present", "id_undamaged"];
  var add = document.getElementById("envelope-add");
  if (!scan) {
    return;
  }
  scan.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") {
      return;
    }
    var envelopeHasInvoices = document.querySelector('input[name="envelope"]') !== null;
    if (scan.value.trim() === "" && envelopeHasInvoices) {
      return; // Enter on an empty field saves the envelope (Save is the form's default button)
    }
    // Move on to the parts instead of saving paper whose parts nobody has ticked yet (which
    // would reject the return as incomplete).
    event.preventDefault();
    if (scan.value.trim() !== "") {
      document.getElementById(parts[0]).focus();
    }
  });
  // Enter on a part: this invoice is in the envelope; the scan field waits for the next one.
  parts.forEach(function (id) {
    var box = document.getElementById(id);
    if (!box || !add) {
      return;
    }
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        add.click();
      }
    });
  });
})();
