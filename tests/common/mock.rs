//! wiremock helpers shared by the client and credential tests.

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Answers POSTs in turn: each of `first` once, in order, then `then` to every later call (a
/// failure the client must retry, or a success whose refresh then fails).
pub async fn answer_in_turn(
    server: &MockServer,
    first: impl IntoIterator<Item = ResponseTemplate>,
    then: ResponseTemplate,
) {
    let mut priority = 1;
    for answer in first {
        Mock::given(method("POST"))
            .respond_with(answer)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(server)
            .await;
        priority += 1;
    }
    Mock::given(method("POST"))
        .respond_with(then)
        .with_priority(priority)
        .mount(server)
        .await;
}
