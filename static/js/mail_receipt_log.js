// The paper log form (admin/returns/mailreceipt/log.html), loaded as a file: the CSP allows
// no inline script.
// A barcode scanner ends with Enter: move on to the checkboxes instead of saving paper
// whose parts nobody has ticked yet (which would reject the return as incomplete).
document.getElementById("id_code_and_number").addEventListener("keydown", function (event) {
  if (event.key === "Enter") {
    event.preventDefault();
    document.getElementById("id_invoice_form_present").focus();
  }
});
