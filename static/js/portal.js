// Progressive enhancement of the portal. Every page works without this file:
// the Refund button submits a GET form to the plain refund page, forms post normally.
(function () {
  "use strict";

  // Double-click protection: a form marked data-once is submitted once; its buttons are
  // disabled as soon as the browser starts submitting (the server still refuses a second
  // return, R2).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("form[data-once]")) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.dataset.submitted) {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "1";
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.disabled = true;
      button.setAttribute("aria-disabled", "true");
    });
  });

  // "Has this invoice been certified?": the answer picks what to send back. Yes: the buyer's
  // red-letter form, nothing mailed; no: the mailing address and the parts to mail (R4).
  // Nothing shows until it is answered. Without JavaScript both blocks show, each titled.
  function syncCertified(root) {
    root.querySelectorAll("[data-when-certified]").forEach(function (block) {
      var answer = block.closest("form").querySelector("input[name=certified]:checked");
      block.hidden = !(answer && answer.value === block.dataset.whenCertified);
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "certified") syncCertified(document);
  });

  // The Refund dialog: the same form as the refund page, in a native modal <dialog>.
  var dialog = document.getElementById("refund-dialog");
  if (dialog && typeof dialog.showModal === "function") {
    var body = dialog.querySelector("[data-dialog-body]");
    var opener = null;
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-refund]");
      if (button) {
        // A click, Enter or Space on the button: the form's page, in the dialog.
        event.preventDefault();
        opener = button;
        var pageUrl = button.form.action;
        var url = new URL(pageUrl, window.location.href);
        url.searchParams.set("dialog", "1");
        fetch(url, { credentials: "same-origin" })
          .then(function (response) {
            if (response.redirected || !response.ok) {
              window.location.href = pageUrl; // let the full page explain
              return null;
            }
            return response.text();
          })
          .then(function (html) {
            if (html === null) return;
            body.innerHTML = html;
            syncCertified(body);
            dialog.showModal();
            var reason = body.querySelector("textarea[name=reason]");
            if (reason) reason.focus();
          });
        return;
      }
      if (event.target.closest("[data-dialog-cancel]") && dialog.open) {
        event.preventDefault();
        dialog.close();
      }
    });
    dialog.addEventListener("close", function () {
      body.innerHTML = "";
      if (opener) opener.focus();
    });
  }
  syncCertified(document);
})();

// Apply for an invoice: show special-invoice fields only for special invoices (without
// JavaScript every field stays visible). A saved profile is applied by its "Use profile"
// button only: choosing in the list never reloads the page (WCAG 3.2.2).
(function () {
  "use strict";
  function syncSpecial() {
    document.querySelectorAll("[data-special-only]").forEach(function (block) {
      var special = block.form.querySelector("input[name=invoice_type][value=special]");
      block.hidden = !(special && special.checked);
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "invoice_type") syncSpecial();
  });
  syncSpecial();

  // Digital or paper: a digital invoice is downloaded (and emailed, when an address is
  // given), a paper one is mailed. Only the chosen medium's fields show; the other's are
  // disabled, so they are not sent. Without JavaScript both show, each titled.
  function syncMedium() {
    document.querySelectorAll("[data-medium-only]").forEach(function (block) {
      var chosen = block.form && block.form.querySelector("input[name=medium]:checked");
      var applies = !chosen || chosen.value === block.dataset.mediumOnly;
      block.hidden = !applies;
      block.disabled = !applies;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name === "medium") syncMedium();
  });
  syncMedium();
})();
