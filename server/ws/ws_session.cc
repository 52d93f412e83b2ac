#include "server/ws/ws_session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/protocol.h"

namespace herald::ws {

WsFrame::WsFrame(std::string payload) {
  namespace frame = websocketpp::frame;
  message_ = std::make_shared<WsConfig::message_type>(WsConfig::con_msg_manager_type::ptr(),
                                                      frame::opcode::text, 0);
  const uint64_t size = payload.size();
  message_->set_header(frame::prepare_header(
      frame::basic_header(frame::opcode::text, size, /*fin=*/true, /*mask=*/false),
      frame::extended_header(size)));
  message_->get_raw_payload() = std::move(payload);
  message_->set_prepared(true);
}

core::OutFramePtr WsFrameFactory::Make(std::string payload) const {
  return std::make_shared<const WsFrame>(std::move(payload));
}

WsSession::WsSession(core::ConnectionMeta meta, WsServer::connection_ptr connection, core::Hub* hub)
    : core::Session(std::move(meta)),
      connection_(std::move(connection)),
      hub_(hub),
      max_send_buffer_bytes_(hub->limits().max_send_buffer_bytes) {}

void WsSession::Close(int code, absl::string_view reason) {
  websocketpp::lib::error_code ec;  // invalid_state when already closing: nothing to do.
  connection_->close(static_cast<websocketpp::close::status::value>(code), std::string(reason), ec);
}

size_t WsSession::BufferedBytes() const { return connection_->get_buffered_amount(); }

bool WsSession::DoSend(const core::OutFramePtr& frame) {
  const auto& ws_frame = static_cast<const WsFrame&>(*frame);
  if (connection_->get_buffered_amount() + ws_frame.payload().size() > max_send_buffer_bytes_) {
    if (!slow_.exchange(true)) {
      hub_->CountSlowConsumerClose();
      Close(core::kCloseSlowConsumer,
            absl::StrCat("slow consumer: more than ", max_send_buffer_bytes_, " bytes queued"));
    }
    return false;
  }
  return !connection_->send(ws_frame.message());
}

}  // namespace herald::ws
