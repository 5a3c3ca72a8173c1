//! Requests for vSwarm's online-shop functions, built as vSwarm-proto's
//! `grpcclient/hipstershop_clients.go` builds them from the client's input (`-input`): the
//! same default address, cart items, money, order and e-mail, and the same use of the input
//! (product id, search query, user id, or whole units of money where vSwarm parses a number).
//!
//! One deliberate difference: vSwarm's default credit card expired in March 2025, so since then
//! vSwarm's own payment service rejects every default request; ours sends the same card with
//! expiry year 2039 so that the charge itself (card check, uuid) is what gets measured.

use bytes::{Buf, BufMut};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

use crate::client::proto::hipstershop as pb;

/// A method of an online-shop service, named as `--service <function>[/<Method>]`; without a
/// method the function's first one is used, as vSwarm's client does (`-function-method 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShopMethod {
    ListProducts,
    GetProduct,
    SearchProducts,
    GetQuote,
    ShipOrder,
    GetSupportedCurrencies,
    Convert,
    Charge,
    SendOrderConfirmation,
    ListRecommendations,
}

impl ShopMethod {
    pub fn parse(text: &str) -> Option<ShopMethod> {
        let (function, method) = text.split_once('/').unwrap_or((text, ""));
        use ShopMethod::*;
        let methods: &[ShopMethod] = match function {
            "productcatalogservice" => &[ListProducts, GetProduct, SearchProducts],
            "shippingservice" => &[GetQuote, ShipOrder],
            "currencyservice" => &[GetSupportedCurrencies, Convert],
            "paymentservice" => &[Charge],
            "emailservice" => &[SendOrderConfirmation],
            "recommendationservice" => &[ListRecommendations],
            _ => return None,
        };
        if method.is_empty() {
            return methods.first().copied();
        }
        methods
            .iter()
            .copied()
            .find(|candidate| format!("{candidate:?}") == method)
    }
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
        ShopMethod::GetProduct => pb::GetProductRequest { id: input.into() }.encode_to_vec(),
        ShopMethod::SearchProducts => pb::SearchProductsRequest {
            query: input.into(),
        }
        .encode_to_vec(),
        ShopMethod::GetQuote => pb::GetQuoteRequest {
            address: Some(address()),
            items: cart(),
        }
        .encode_to_vec(),
        ShopMethod::ShipOrder => pb::ShipOrderRequest {
            address: Some(address()),
            items: cart(),
        }
        .encode_to_vec(),
        ShopMethod::Convert => pb::CurrencyConversionRequest {
            from: Some(money(input)),
            to_code: "EUR".into(),
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
        ShopMethod::GetProduct => "/hipstershop.ProductCatalogService/GetProduct",
        ShopMethod::SearchProducts => "/hipstershop.ProductCatalogService/SearchProducts",
        ShopMethod::GetQuote => "/hipstershop.ShippingService/GetQuote",
        ShopMethod::ShipOrder => "/hipstershop.ShippingService/ShipOrder",
        ShopMethod::GetSupportedCurrencies => "/hipstershop.CurrencyService/GetSupportedCurrencies",
        ShopMethod::Convert => "/hipstershop.CurrencyService/Convert",
        ShopMethod::Charge => "/hipstershop.PaymentService/Charge",
        ShopMethod::SendOrderConfirmation => "/hipstershop.EmailService/SendOrderConfirmation",
        ShopMethod::ListRecommendations => "/hipstershop.RecommendationService/ListRecommendations",
    }
}

/// One call of `method` with the encoded `request`; returns the encoded reply.
pub async fn call(
    channel: tonic::transport::Channel,
    method: ShopMethod,
    request: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(path(method));
    let reply = grpc
        .unary(tonic::Request::new(request), path, PassThrough)
        .await?;
    Ok(reply.into_inner())
}

/// A codec that sends and receives already-encoded protobuf messages as they are.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

impl Codec for PassThrough {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = PassThrough;
    type Decoder = PassThrough;

    fn encoder(&mut self) -> Self::Encoder {
        PassThrough
    }

    fn decoder(&mut self) -> Self::Decoder {
        PassThrough
    }
}

impl Encoder for PassThrough {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for PassThrough {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Self::Error> {
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_pick_vswarms_first_method_unless_one_is_named() {
        assert_eq!(
            ShopMethod::parse("productcatalogservice"),
            Some(ShopMethod::ListProducts)
        );
        assert_eq!(
            ShopMethod::parse("currencyservice/Convert"),
            Some(ShopMethod::Convert)
        );
        assert_eq!(ShopMethod::parse("currencyservice/Charge"), None);
        assert_eq!(ShopMethod::parse("cartservice"), None);
    }

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
            request(ShopMethod::Convert, "10"),
            b"\n\t\n\x03USD\x10\n\x18\n\x12\x03EUR"
        );
        assert_eq!(
            request(ShopMethod::ListRecommendations, "10"),
            b"\n\x0210\x12\nOLJCESPC7Z\x12\nLS4PSXUNUM"
        );
        assert_eq!(request(ShopMethod::SendOrderConfirmation, "10").len(), 157);
    }
}
