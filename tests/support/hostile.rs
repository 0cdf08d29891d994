//! A raw HTTP/1.1 test server that misbehaves on purpose (endless streams, bad UTF-8,
//! huge bodies, echoed credentials), for the client's limits and secret scrubbing.

/// What a hostile test server does on `POST /v1/chat/completions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Valid chunks as fast as the socket takes them, forever.
    EndlessEvents,
    /// `data:` lines that never get their blank line.
    EndlessEvent,
    /// One event that is not UTF-8, then `[DONE]`.
    BadUtf8,
    /// A 200 whole body larger than the client's cap.
    HugeBody,
    /// HTTP 200 with a JSON body although a stream was asked for.
    JsonInsteadOfStream,
    /// HTTP 400 whose error message echoes every request header, Python-dict style
    /// (`{'authorization': 'Basic ...'}`), as some proxies and frameworks do.
    EchoHeaders400,
    /// HTTP 200 with an HTML page (a proxy's login or error page) to a streaming request.
    Html200,
    /// JSON error bodies with statuses 429, 500, 429, 500, ... (one per connection).
    Statuses,
    /// HTTP 413 as soon as the request head arrives, then the connection is closed while
    /// the client still sends its body (the unread bytes make the kernel reset it).
    Reject413,
}

/// A raw HTTP/1.1 server on 127.0.0.1:0 that misbehaves as `mode` says; every other path
/// is a 404. Bodies end when the connection closes.
pub async fn hostile(mode: Hostile) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            n += 1;
            let nth = n;
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                if !text.starts_with("POST /v1/chat/completions") {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                        .await;
                    return;
                }
                let sse = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";
                let json = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                let chunk = br#"data: {"id":"x","choices":[{"index":0,"delta":{"content":"w"}}]}"#;
                match mode {
                    Hostile::EndlessEvents => {
                        let mut block = Vec::new();
                        for _ in 0..64 {
                            block.extend_from_slice(chunk);
                            block.extend_from_slice(b"\n\n");
                        }
                        let _ = sock.write_all(sse).await;
                        while sock.write_all(&block).await.is_ok() {}
                    }
                    Hostile::EndlessEvent => {
                        let _ = sock.write_all(sse).await;
                        let line = [&chunk[..], b"\n"].concat().repeat(64);
                        while sock.write_all(&line).await.is_ok() {}
                    }
                    Hostile::BadUtf8 => {
                        let _ = sock.write_all(sse).await;
                        let _ = sock
                            .write_all(b"data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\"}}]}\n\ndata: [DONE]\n\n")
                            .await;
                    }
                    Hostile::HugeBody => {
                        let _ = sock.write_all(json).await;
                        let _ = sock
                            .write_all(b"{\"choices\":[{\"message\":{\"content\":\"")
                            .await;
                        let block = vec![b'a'; 1 << 20];
                        for _ in 0..20 {
                            if sock.write_all(&block).await.is_err() {
                                return;
                            }
                        }
                        let _ = sock.write_all(b"\"}}]}").await;
                    }
                    Hostile::EchoHeaders400 => {
                        // Read the request body too, so closing does not reset the
                        // connection under the response.
                        let head_len = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                        let want = text
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        let mut have = head.len() - head_len;
                        while have < want {
                            match sock.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => have += n,
                            }
                        }
                        let mut headers: Vec<(String, String)> = text[..head_len]
                            .split("\r\n")
                            .skip(1)
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        // the interesting one first, whatever the error message's cap
                        headers.sort_by_key(|(k, _)| k != "authorization");
                        let headers: Vec<String> = headers
                            .iter()
                            .map(|(k, v)| format!("'{k}': '{v}'"))
                            .collect();
                        let body = serde_json::json!({
                            "error": {
                                "message": format!("bad request; headers: {{{}}}", headers.join(", ")),
                                "type": "BadRequestError",
                            }
                        })
                        .to_string();
                        let head = format!(
                            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                    Hostile::Html200 => {
                        let page = "<!DOCTYPE html><html><body><h1>Sign in to the proxy</h1></body></html>";
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            page.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(page.as_bytes()).await;
                    }
                    Hostile::Statuses => {
                        let status = if nth % 2 == 1 {
                            "429 Too Many Requests"
                        } else {
                            "500 Internal Server Error"
                        };
                        let body = r#"{"error":{"message":"no","type":"Error"}}"#;
                        let head = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        let _ = sock.write_all(body.as_bytes()).await;
                    }
                    Hostile::Reject413 => {
                        let _ = sock
                            .write_all(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                    }
                    Hostile::JsonInsteadOfStream => {
                        let _ = sock.write_all(json).await;
                        let _ = sock
                            .write_all(br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"completion_tokens":1}}"#)
                            .await;
                    }
                }
            });
        }
    });
    addr
}
