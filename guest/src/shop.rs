//! Requests for vSwarm's online-shop functions, built as vSwarm-proto's
//! `grpcclient/hipstershop_clients.go` builds them from the client's input (`-input`): the
//! same default address, cart items, money, order and e-mail, and the same use of the input
//! (product id, search query, user id, or whole units of money where vSwarm parses a number).
//!
//! One deliberate difference: vSwarm's default credit card expired in March 2025, so since then
//! vSwarm's own payment service rejects every default request; ours sends the same card with
//! expiry year 2039 so that the charge itself (card check, uuid) is what gets measured.

use crate::client::proto::hipstershop as pb;

/// The online-shop functions vSwarm-u runs, each called with the method vSwarm's client picks
/// by default (`-function-method 0`); their other methods are covered by the recorded pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopMethod {
    ListProducts,
    GetQuote,
    GetSupportedCurrencies,
    Charge,
    SendOrderConfirmation,
    ListRecommendations,
}

fn address() -> pb::Address {
    pb::Address {
        street_address: "7846 Coffee St.".into(),
        city: "Pittsford".into(),
        state: "NY".into(),
        country: "US".into(),
        zip_code: 14534,
    }
}

fn cart() -> Vec<pb::CartItem> {
    vec![
        pb::CartItem {
            product_id: "OLJCESPC7Z".into(),
            quantity: 3,
        },
        pb::CartItem {
            product_id: "LS4PSXUNUM".into(),
            quantity: 2,
        },
    ]
}

/// vSwarm's default money; a whole-number input replaces the units.
fn money(input: &str) -> pb::Money {
    pb::Money {
        currency_code: "USD".into(),
        units: input.parse().unwrap_or(100),
        nanos: 10,
    }
}

fn order_item(id: &str, quantity: i32, units: i64, nanos: i32) -> pb::OrderItem {
    pb::OrderItem {
        item: Some(pb::CartItem {
            product_id: id.into(),
            quantity,
        }),
        cost: Some(pb::Money {
            currency_code: "USD".into(),
            units,
            nanos,
        }),
    }
}

/// The request message a method sends for `input`, encoded.
pub fn request(method: ShopMethod, input: &str) -> Vec<u8> {
    use prost::Message;
    match method {
        ShopMethod::ListProducts | ShopMethod::GetSupportedCurrencies => {
            pb::Empty {}.encode_to_vec()
        }
        ShopMethod::GetQuote => pb::GetQuoteRequest {
            address: Some(address()),
            items: cart(),
        }
        .encode_to_vec(),
        ShopMethod::Charge => pb::ChargeRequest {
            amount: Some(money(input)),
            credit_card: Some(pb::CreditCardInfo {
                credit_card_number: "5496524458927653".into(),
                credit_card_cvv: 123,
                credit_card_expiration_year: 2039,
                credit_card_expiration_month: 3,
            }),
        }
        .encode_to_vec(),
        ShopMethod::SendOrderConfirmation => pb::SendOrderConfirmationRequest {
            email: "jonny.depp@gmail.com".into(),
            order: Some(pb::OrderResult {
                order_id: "123".into(),
                shipping_tracking_id: "345".into(),
                shipping_cost: Some(money("100")),
                shipping_address: Some(address()),
                items: vec![
                    order_item("1111", 1, 111, 11),
                    order_item("2222", 2, 222, 22),
                    order_item("333", 3, 333, 33),
                ],
            }),
        }
        .encode_to_vec(),
        ShopMethod::ListRecommendations => pb::ListRecommendationsRequest {
            user_id: input.into(),
            product_ids: vec!["OLJCESPC7Z".into(), "LS4PSXUNUM".into()],
        }
        .encode_to_vec(),
    }
}

/// The gRPC path of a method.
pub fn path(method: ShopMethod) -> &'static str {
    match method {
        ShopMethod::ListProducts => "/hipstershop.ProductCatalogService/ListProducts",
        ShopMethod::GetQuote => "/hipstershop.ShippingService/GetQuote",
        ShopMethod::GetSupportedCurrencies => "/hipstershop.CurrencyService/GetSupportedCurrencies",
        ShopMethod::Charge => "/hipstershop.PaymentService/Charge",
        ShopMethod::SendOrderConfirmation => "/hipstershop.EmailService/SendOrderConfirmation",
        ShopMethod::ListRecommendations => "/hipstershop.RecommendationService/ListRecommendations",
    }
}

/// One call; the reply's bytes as text (lossy: only its size is recorded) or the status.
pub async fn call(
    channel: tonic::transport::Channel,
    method: ShopMethod,
    input: &str,
) -> Result<String, String> {
    match crate::conformance::call(channel, path(method), request(method, input)).await? {
        crate::conformance::Answer::Reply(bytes) => {
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        status => Err(status.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_match_the_recorded_vswarm_client_bytes() {
        // The same bytes as the requests in tests/fixtures/conformance (vSwarm client defaults).
        assert_eq!(request(ShopMethod::ListProducts, "10"), Vec::<u8>::new());
        assert_eq!(
            request(ShopMethod::GetQuote, "10"),
            b"\n'\n\x0f7846 Coffee St.\x12\tPittsford\x1a\x02NY\"\x02US(\xc6q\
              \x12\x0e\n\nOLJCESPC7Z\x10\x03\x12\x0e\n\nLS4PSXUNUM\x10\x02"
        );
        assert_eq!(
            request(ShopMethod::ListRecommendations, "10"),
            b"\n\x0210\x12\nOLJCESPC7Z\x12\nLS4PSXUNUM"
        );
        assert_eq!(request(ShopMethod::SendOrderConfirmation, "10").len(), 157);
    }
}
