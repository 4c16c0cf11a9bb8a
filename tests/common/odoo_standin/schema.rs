//! The models and fields the stand-in knows: the reference scenario's Odoo 18 models with
//! Odoo's technical names, labels, required flags and computed read-only fields
//! (docs/odoo-protocol.md §8), plus what they point at (currencies, taxes, journals).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDelete {
    SetNull,
    Restrict,
    Cascade,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Char,
    Text,
    Bool,
    Int,
    Float,
    Monetary,
    Date,
    Datetime,
    Selection(Vec<(&'static str, &'static str)>),
    Many2one(&'static str, OnDelete),
    /// comodel, inverse many2one on the comodel
    One2many(&'static str, &'static str),
    Many2many(&'static str),
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// Computed without inverse: Odoo ignores what a client writes there.
    pub computed: bool,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub name: &'static str,
    pub description: &'static str,
    pub fields: Vec<Field>,
}

impl Model {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
    pub fn has_active(&self) -> bool {
        self.field("active").is_some()
    }
}

fn f(name: &'static str, label: &'static str, kind: Kind) -> Field {
    Field {
        name,
        label,
        kind,
        required: false,
        computed: false,
    }
}
fn req(mut x: Field) -> Field {
    x.required = true;
    x
}
fn comp(mut x: Field) -> Field {
    x.computed = true;
    x
}
fn m2o(name: &'static str, label: &'static str, comodel: &'static str, required: bool) -> Field {
    // Odoo turns the default `set null` into `restrict` on a required many2one.
    let od = if required {
        OnDelete::Restrict
    } else {
        OnDelete::SetNull
    };
    Field {
        required,
        ..f(name, label, Kind::Many2one(comodel, od))
    }
}

pub fn models() -> Vec<Model> {
    use Kind::*;
    let company = || m2o("company_id", "Company", "res.company", false);
    vec![
        Model {
            name: "res.company",
            description: "Companies",
            fields: vec![
                req(f("name", "Company Name", Char)),
                m2o("partner_id", "Partner", "res.partner", true),
                m2o("currency_id", "Currency", "res.currency", true),
            ],
        },
        Model {
            name: "res.currency",
            description: "Currency",
            fields: vec![
                req(f("name", "Currency", Char)),
                f("symbol", "Symbol", Char),
                f("decimal_places", "Decimal Places", Int),
                f("active", "Active", Bool),
            ],
        },
        Model {
            name: "res.partner",
            description: "Contact",
            fields: vec![
                f("name", "Name", Char),
                f("ref", "Reference", Char),
                f("email", "Email", Char),
                f("phone", "Phone", Char),
                f("mobile", "Mobile", Char),
                f("city", "City", Char),
                f("comment", "Notes", Text),
                f("active", "Active", Bool),
                f("is_company", "Is a Company", Bool),
                f(
                    "type",
                    "Address Type",
                    Selection(vec![
                        ("contact", "Contact"),
                        ("invoice", "Invoice Address"),
                        ("delivery", "Delivery Address"),
                        ("other", "Other Address"),
                    ]),
                ),
                f("date", "Date", Date),
                f("partner_latitude", "Geo Latitude", Float),
                m2o("parent_id", "Related Company", "res.partner", false),
                company(),
            ],
        },
        Model {
            name: "res.users",
            description: "User",
            fields: vec![
                req(f("login", "Login", Char)),
                f("name", "Name", Char),
                f("active", "Active", Bool),
                m2o("partner_id", "Related Partner", "res.partner", true),
                company(),
            ],
        },
        Model {
            name: "ir.model.data",
            description: "Model Data",
            fields: vec![
                req(f("name", "External Identifier", Char)),
                req(f("module", "Module", Char)),
                req(f("model", "Model Name", Char)),
                f("res_id", "Record ID", Int),
                f("noupdate", "Non Updatable", Bool),
            ],
        },
        Model {
            name: "fleet.vehicle.model.brand",
            description: "Brand of the vehicle",
            fields: vec![req(f("name", "Name", Char)), f("active", "Active", Bool)],
        },
        Model {
            name: "fleet.vehicle.model",
            description: "Model of a vehicle",
            fields: vec![
                req(f("name", "Model name", Char)),
                m2o(
                    "brand_id",
                    "Manufacturer",
                    "fleet.vehicle.model.brand",
                    true,
                ),
                req(f(
                    "vehicle_type",
                    "Vehicle Type",
                    Selection(vec![("car", "Car"), ("bike", "Bike")]),
                )),
                f("active", "Active", Bool),
            ],
        },
        Model {
            name: "fleet.vehicle",
            description: "Vehicle",
            fields: vec![
                comp(f("name", "Name", Char)),
                m2o("model_id", "Model", "fleet.vehicle.model", true),
                comp(m2o("brand_id", "Brand", "fleet.vehicle.model.brand", false)),
                f("license_plate", "License Plate", Char),
                f("vin_sn", "Chassis Number", Char),
                f("model_year", "Model Year", Char),
                f("seats", "Seats Number", Int),
                f("acquisition_date", "Registration Date", Date),
                f("active", "Active", Bool),
                company(),
            ],
        },
        Model {
            name: "hr.employee",
            description: "Employee",
            fields: vec![
                req(f("name", "Employee Name", Char)),
                f("work_email", "Work Email", Char),
                f("mobile_phone", "Work Mobile", Char),
                f("work_phone", "Work Phone", Char),
                // Odoo 18's hr module: where a driver's licence number and expiry go.
                f("permit_no", "Work Permit No", Char),
                f(
                    "work_permit_expiration_date",
                    "Work Permit Expiration Date",
                    Date,
                ),
                req(f(
                    "employee_type",
                    "Employee Type",
                    Selection(vec![
                        ("employee", "Employee"),
                        ("worker", "Worker"),
                        ("student", "Student"),
                        ("trainee", "Trainee"),
                        ("contractor", "Contractor"),
                        ("freelance", "Freelancer"),
                    ]),
                )),
                f("active", "Active", Bool),
                m2o("company_id", "Company", "res.company", true),
            ],
        },
        Model {
            name: "account.journal",
            description: "Journal",
            fields: vec![
                req(f("name", "Journal Name", Char)),
                req(f("code", "Short Code", Char)),
                req(f(
                    "type",
                    "Type",
                    Selection(vec![
                        ("sale", "Sales"),
                        ("purchase", "Purchase"),
                        ("cash", "Cash"),
                        ("bank", "Bank"),
                        ("general", "Miscellaneous"),
                    ]),
                )),
                f("active", "Active", Bool),
            ],
        },
        Model {
            name: "account.tax",
            description: "Tax",
            fields: vec![
                req(f("name", "Tax Name", Char)),
                req(f("amount", "Amount", Float)),
                req(f(
                    "type_tax_use",
                    "Tax Type",
                    Selection(vec![
                        ("sale", "Sales"),
                        ("purchase", "Purchases"),
                        ("none", "None"),
                    ]),
                )),
                f("active", "Active", Bool),
            ],
        },
        Model {
            name: "account.move",
            description: "Journal Entry",
            fields: vec![
                comp(f("name", "Number", Char)),
                req(f(
                    "move_type",
                    "Type",
                    Selection(vec![
                        ("entry", "Journal Entry"),
                        ("out_invoice", "Customer Invoice"),
                        ("out_refund", "Customer Credit Note"),
                        ("in_invoice", "Vendor Bill"),
                        ("in_refund", "Vendor Credit Note"),
                        ("out_receipt", "Sales Receipt"),
                        ("in_receipt", "Purchase Receipt"),
                    ]),
                )),
                m2o("partner_id", "Partner", "res.partner", false),
                f("invoice_date", "Invoice/Bill Date", Date),
                f("invoice_date_due", "Due Date", Date),
                f("date", "Date", Date),
                m2o("currency_id", "Currency", "res.currency", true),
                m2o("journal_id", "Journal", "account.journal", true),
                f("ref", "Reference", Char),
                comp(f(
                    "state",
                    "Status",
                    Selection(vec![
                        ("draft", "Draft"),
                        ("posted", "Posted"),
                        ("cancel", "Cancelled"),
                    ]),
                )),
                comp(f(
                    "payment_state",
                    "Payment Status",
                    Selection(vec![
                        ("not_paid", "Not Paid"),
                        ("in_payment", "In Payment"),
                        ("paid", "Paid"),
                        ("partial", "Partially Paid"),
                        ("reversed", "Reversed"),
                    ]),
                )),
                comp(f("amount_untaxed", "Untaxed Amount", Monetary)),
                comp(f("amount_tax", "Tax", Monetary)),
                comp(f("amount_total", "Total", Monetary)),
                comp(f("amount_residual", "Amount Due", Monetary)),
                f(
                    "invoice_line_ids",
                    "Invoice lines",
                    One2many("account.move.line", "move_id"),
                ),
                m2o("company_id", "Company", "res.company", true),
            ],
        },
        Model {
            name: "account.move.line",
            description: "Journal Item",
            fields: vec![
                Field {
                    required: true,
                    ..f(
                        "move_id",
                        "Journal Entry",
                        Many2one("account.move", OnDelete::Cascade),
                    )
                },
                f("name", "Label", Char),
                f("quantity", "Quantity", Float),
                f("price_unit", "Unit Price", Float),
                f("tax_ids", "Taxes", Many2many("account.tax")),
                comp(f("price_subtotal", "Subtotal", Monetary)),
                comp(f("price_total", "Total", Monetary)),
            ],
        },
    ]
}

/// Selections Odoo writes itself, never from the client (`state` is posted by `action_post`).
pub fn default_value(model: &str, field: &str) -> Option<serde_json::Value> {
    use serde_json::json;
    Some(match (model, field) {
        (_, "active") => json!(true),
        ("res.partner", "company_id") => return None,
        (_, "company_id") => json!(1),
        ("res.partner", "type") => json!("contact"),
        ("fleet.vehicle.model", "vehicle_type") => json!("car"),
        ("hr.employee", "employee_type") => json!("employee"),
        ("account.move", "move_type") => json!("entry"),
        ("account.move", "state") => json!("draft"),
        ("account.move", "payment_state") => json!("not_paid"),
        ("account.move", "name") => json!("/"),
        ("account.move.line", "quantity") => json!(1.0),
        ("res.currency", "decimal_places") => json!(2),
        _ => return None,
    })
}
