//! The sync wire format shared by the laptop and the server: changes, receipts, pages, error codes, the merge rule. No IO.
