//! How rows reach the pull feed: every statement that writes a record laptops must see is a
//! data-modifying CTE whose `RETURNING *` feeds an `INSERT INTO change_log` in the same statement, so the
//! record and its feed entry are written in one round trip and can never disagree.

/// The `INSERT INTO change_log ... SELECT ... FROM w` tail for a CTE named `w` that returned whole rows
/// of a table. `record_expr` strips columns that are not part of the domain record; `scope_crew` and
/// `scope_user` are SQL expressions over `w` (or bind parameters) naming who may pull the row.
pub(crate) fn change_log_tail(
    entity: &str,
    entity_id_expr: &str,
    record_expr: &str,
    field_clocks_expr: &str,
    scope_crew: &str,
    scope_user: &str,
) -> String {
    format!(
        "INSERT INTO change_log (tenant_id, id, entity, entity_id, op, record, field_clocks, scope_crew, scope_user)
         SELECT w.tenant_id, gen_random_uuid(), '{entity}', {entity_id_expr}, 'insert', {record_expr}, {field_clocks_expr}, {scope_crew}, {scope_user}
           FROM w"
    )
}

/// [`change_log_tail`] for a record every laptop of the tenant pulls (experiments, arms, scores,
/// policies, legacy-imported touches): the whole row but its tenant, no field clocks, no crew or user scope.
pub(crate) fn tenant_wide_change_log_tail(entity: &str, entity_id_expr: &str) -> String {
    change_log_tail(
        entity,
        entity_id_expr,
        "to_jsonb(w) - 'tenant_id'",
        "NULL::jsonb",
        "NULL::uuid",
        "NULL::uuid",
    )
}
