//! The per-request event budget: every event a request would produce, across its mutation
//! fields, their aliases, fragments and the requests of a JSON-array batch, counted before
//! anything runs.
//!
//! Query complexity cannot do this: it counts a list argument as one, so 800 aliases of
//! `register_kafka_events(events: $e)` with 404 events in `$e` once stored 323,200 events from
//! one 64 KiB request. Counting happens on the parsed document and the variables, so a request
//! over the budget is refused whole and nothing of it reaches Kafka.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::Variables;
use async_graphql_value::{ConstValue, Name, Value};

/// The mutation fields that produce events, and the argument holding them.
const PRODUCING_FIELDS: [(&str, &str); 2] = [
    ("register_kafka_event", "event"),
    ("register_kafka_events", "events"),
];

/// How many events the request would produce if it ran. A request that does not parse counts
/// nothing: the executor refuses it without running anything.
pub fn events_in(request: &mut async_graphql::Request) -> usize {
    let variables = request.variables.clone();
    let operation_name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return 0;
    };
    operations(document, operation_name.as_deref())
        .map(|op| Counter::new(document, op, &variables).selection_set(&op.selection_set.node))
        .fold(0, usize::saturating_add)
}

/// The operations that may run: the named one, the only one, or (when the request names none
/// of several, which the executor refuses) all of them.
fn operations<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> impl Iterator<Item = &'a OperationDefinition> {
    let all: Vec<&OperationDefinition> = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => vec![&op.node],
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).map(|op| &op.node).into_iter().collect()
        }
        (DocumentOperations::Multiple(ops), None) => ops.values().map(|op| &op.node).collect(),
    };
    all.into_iter()
        .filter(|op| op.ty == OperationType::Mutation)
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<&'a Name, &'a ConstValue>,
    /// Each fragment's count, computed once: a fragment spread many times, or fragments
    /// spreading each other, cost one walk each. `None` while being walked (a cycle counts 0;
    /// validation refuses it anyway).
    fragments: HashMap<&'a Name, Option<usize>>,
}

impl<'a> Counter<'a> {
    fn new(
        document: &'a ExecutableDocument,
        operation: &'a OperationDefinition,
        variables: &'a Variables,
    ) -> Self {
        let defaults = operation
            .variable_definitions
            .iter()
            .filter_map(|d| Some((&d.node.name.node, &d.node.default_value.as_ref()?.node)))
            .collect();
        Counter {
            document,
            variables,
            defaults,
            fragments: HashMap::new(),
        }
    }

    fn selection_set(&mut self, set: &'a SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    PRODUCING_FIELDS
                        .iter()
                        .find(|(name, _)| field.name.node.as_str() == *name)
                        .map_or(0, |(_, argument)| {
                            field
                                .get_argument(argument)
                                .map_or(0, |value| self.events_in_value(&value.node))
                        })
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            })
            .fold(0, usize::saturating_add)
    }

    fn fragment(&mut self, name: &'a Name) -> usize {
        match self.fragments.get(name) {
            Some(Some(count)) => return *count,
            Some(None) => return 0,
            None => {}
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return 0;
        };
        self.fragments.insert(name, None);
        let count = self.selection_set(&definition.node.selection_set.node);
        self.fragments.insert(name, Some(count));
        count
    }

    /// A list argument holds one event per item; GraphQL coerces a single value to a list of one.
    fn events_in_value(&self, value: &Value) -> usize {
        match value {
            Value::Null => 0,
            Value::List(items) => items.len(),
            Value::Variable(name) => match self
                .variables
                .get(name)
                .or(self.defaults.get(name).copied())
            {
                None | Some(ConstValue::Null) => 0,
                Some(ConstValue::List(items)) => items.len(),
                Some(_) => 1,
            },
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn count(query: &str, variables: serde_json::Value) -> usize {
        let mut request =
            async_graphql::Request::new(query).variables(Variables::from_json(variables));
        events_in(&mut request)
    }

    #[test]
    fn aliases_fragments_and_variables_all_count() {
        let q = "mutation($e: [RegisterKafkaEventInput!]!, $one: RegisterKafkaEventInput!) {
            a: register_kafka_events(events: $e) { id }
            b: register_kafka_events(events: $e) { id }
            c: register_kafka_event(event: $one) { id }
            ... on Mutation { d: register_kafka_events(events: [$one, $one]) { id } }
            ...F ...F
        }
        fragment F on Mutation { register_kafka_event(event: $one) { id } }";
        let n = count(q, json!({"e": [{}, {}, {}], "one": {}}));
        assert_eq!(n, 3 + 3 + 1 + 2 + 1 + 1);
    }

    #[test]
    fn a_single_value_for_a_list_counts_one_and_defaults_count_too() {
        let q = "mutation($e: [RegisterKafkaEventInput!]! = [{}, {}]) { register_kafka_events(events: $e) { id } }";
        assert_eq!(count(q, json!({})), 2);
        assert_eq!(count(q, json!({"e": {}})), 1);
    }

    #[test]
    fn queries_unparsable_requests_and_cyclic_fragments_count_nothing() {
        assert_eq!(count("{ ping { message } }", json!({})), 0);
        assert_eq!(count("mutation {", json!({})), 0);
        let cyclic =
            "mutation { ...A } fragment A on Mutation { ...B } fragment B on Mutation { ...A }";
        assert_eq!(count(cyclic, json!({})), 0);
    }

    #[test]
    fn only_the_named_operation_counts() {
        let q = "mutation A($e: [RegisterKafkaEventInput!]!) { register_kafka_events(events: $e) { id } }
                 mutation B($one: RegisterKafkaEventInput!) { register_kafka_event(event: $one) { id } }";
        let mut request = async_graphql::Request::new(q)
            .variables(Variables::from_json(json!({"e": [{}, {}], "one": {}})))
            .operation_name("B");
        assert_eq!(events_in(&mut request), 1);
    }
}
