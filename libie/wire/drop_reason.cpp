// Names and descriptions of the drop reasons, expanded from the one X-macro list.
#include "ie/wire/drop_reason.hpp"

namespace ie::wire {

std::string_view drop_reason_name(DropReason r) {
  switch (r) {
#define IE_X(name, text) \
  case DropReason::name: \
    return #name;
    IE_DROP_REASONS(IE_X)
#undef IE_X
  }
  return "invalid";
}

std::string_view drop_reason_text(DropReason r) {
  switch (r) {
#define IE_X(name, text) \
  case DropReason::name: \
    return text;
    IE_DROP_REASONS(IE_X)
#undef IE_X
  }
  return "invalid drop reason";
}

}  // namespace ie::wire
